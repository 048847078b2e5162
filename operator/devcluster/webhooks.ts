// Admission webhooks (stub until wired): no-op mutate/validate.
import type { Admission } from "./api.js";
import type { Store } from "./store.js";

export class Webhooks implements Admission {
  constructor(private readonly store: Store) {}
  mutate: Admission["mutate"] = (_info, _op, obj) => Promise.resolve(obj);
  validate: Admission["validate"] = () => Promise.resolve();
}
