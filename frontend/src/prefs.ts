// Small per-browser preferences in localStorage. Storage may be blocked or full
// (private windows, quotas): then a preference is simply not remembered.

export function safeStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export function readPref(key: string): string | null {
  try {
    return safeStorage()?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

/** Store `value` under `key`; null removes it. */
export function writePref(key: string, value: string | null): void {
  try {
    const st = safeStorage();
    if (value === null) st?.removeItem(key);
    else st?.setItem(key, value);
  } catch {
    // Storage full or blocked: only the convenience of remembering is lost.
  }
}
