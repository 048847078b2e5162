import { describe, expect, it } from "vitest";
import { DURATION_PATTERN, formatDuration, isDuration, parseDuration } from "../../operator/api/duration.js";

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["5s", 5000],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["1h2m3s4ms", 3_723_004],
    ["1.5s", 1500],
    ["0.5ms", 0.5],
    ["0s", 0],
    ["10m", 600_000],
  ])("%s = %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    "",
    "5",
    "5 s",
    "-1s",
    "+1s",
    "1d",
    "1us",
    "1ns",
    "s",
    "1.s",
    ".5s",
    "1S",
    "1m30",
    "12345678901234567s",
  ])("rejects %j", (text) => {
    expect(isDuration(text)).toBe(false);
    expect(() => parseDuration(text)).toThrow(/invalid duration/);
  });

  it("the CRD pattern and isDuration agree", () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const s of ["250ms", "1m30s", "1.5s", "5", "1d", "m"]) expect(re.test(s)).toBe(isDuration(s));
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [250, "250ms"],
    [1500, "1s500ms"],
    [90_000, "1m30s"],
    [3_723_004, "1h2m3s4ms"],
  ])("%d ms = %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });

  it("rejects negative and non-finite values", () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.NaN)).toThrow(RangeError);
  });
});
