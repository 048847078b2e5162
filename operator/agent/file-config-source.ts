// The standalone config source: one YAML or JSON file, reloaded when it changes.
//
// Change detection watches the file's directory (an editor's write-to-temp-and-rename and a ConfigMap's
// symlink swap both replace the file, which a watch on the file itself would miss) and, because fs.watch
// is best-effort on some filesystems, also polls every `pollMs`. Either way the file is re-read only after
// a short debounce and delivered only when its bytes changed, so a burst of events is one reload.
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { AgentReport, ConfigCandidate, ConfigSource, ConfigVerdict } from "./config-source.js";

export interface FileConfigSourceOptions {
  /** Poll interval in ms, the safety net under fs.watch. Default 2000. */
  pollMs?: number;
  /** Quiet time in ms after a change event before the file is read. Default 25. */
  debounceMs?: number;
  /** Files larger than this are rejected without being parsed. Default 4 MiB. */
  maxBytes?: number;
}

export class FileConfigSource implements ConfigSource {
  readonly name: string;
  private readonly path: string;
  private readonly pollMs: number;
  private readonly debounceMs: number;
  private readonly maxBytes: number;
  private onConfig: ((c: ConfigCandidate) => ConfigVerdict) | undefined;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastContent: string | undefined;
  private reading = false;
  private again = false;
  private closed = false;
  private sawEmpty = false;
  /** The latest report, kept so tests and /status can see what would have been sent. */
  lastReport: AgentReport | undefined;

  constructor(path: string, options: FileConfigSourceOptions = {}) {
    this.path = resolve(path);
    this.name = `file:${this.path}`;
    this.pollMs = options.pollMs ?? 2000;
    this.debounceMs = options.debounceMs ?? 25;
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  }

  subscribe(onConfig: (candidate: ConfigCandidate) => ConfigVerdict): void {
    if (this.onConfig) throw new Error("FileConfigSource: subscribe called twice");
    this.onConfig = onConfig;
    const file = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name === null || name === file || String(name).startsWith("..")) this.schedule();
      });
      this.watcher.on("error", () => {
        // The directory vanished or the watch broke: polling keeps working.
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // No watch support (or no directory yet): polling alone.
    }
    this.poller = setInterval(() => this.schedule(), this.pollMs);
    this.poller.unref();
    void this.read();
  }

  report(report: AgentReport): void {
    this.lastReport = report;
  }

  close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
    return Promise.resolve();
  }

  /** Re-reads now (tests, SIGHUP). */
  reload(): Promise<void> {
    return this.read();
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.read(), this.debounceMs);
    this.debounce.unref();
  }

  private async read(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        const candidate = await this.load();
        if (candidate && !this.closed && this.onConfig) this.onConfig(candidate);
      } while (this.again && !this.closed);
    } finally {
      this.reading = false;
    }
  }

  /** The candidate to deliver, or undefined when nothing changed since the last delivery. */
  private async load(): Promise<ConfigCandidate | undefined> {
    let text: string;
    try {
      const st = await stat(this.path);
      if (st.size > this.maxBytes) {
        return this.changed(`size:${st.size}:${st.mtimeMs}`, {
          origin: this.path,
          decodeError: `file is ${st.size} bytes, more than the ${this.maxBytes} allowed`,
        });
      }
      text = await readFile(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A missing file mid-rename is normal; report it only when it stays missing (next poll sees the same).
      return this.changed(`error:${code}`, {
        origin: this.path,
        decodeError: `cannot read ${this.path}: ${code ?? (err as Error).message}`,
      });
    }
    if (text === this.lastContent) return undefined;
    // An empty file is usually one being rewritten in place (truncate, then write): look again shortly,
    // and reject it only if it is still empty then.
    if (text.trim() === "" && !this.sawEmpty) {
      this.sawEmpty = true;
      this.schedule();
      return undefined;
    }
    this.sawEmpty = false;
    let document: unknown;
    try {
      document = await decode(text);
    } catch (err) {
      return this.changed(text, {
        origin: this.path,
        decodeError: `not valid YAML/JSON: ${(err as Error).message}`,
      });
    }
    return this.changed(text, { origin: this.path, document });
  }

  private changed(key: string, candidate: ConfigCandidate): ConfigCandidate | undefined {
    if (key === this.lastContent) return undefined;
    this.lastContent = key;
    return candidate;
  }
}

/**
 * JSON first; the YAML parser (about 9 MB of resident memory) is loaded only for a file that is not JSON.
 */
async function decode(text: string): Promise<unknown> {
  const t = text.trimStart();
  if (t.startsWith("{")) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (YAML flow mapping): fall through.
    }
  }
  const { parse } = await import("yaml");
  return parse(text) as unknown;
}
