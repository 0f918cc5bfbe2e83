// Helpers exposed to every script (documented in docs/scripting.md).
// This file is one function expression: the runtime calls it once with a source of
// host randomness and installs what it returns as frozen globals. Pure JS on purpose:
// typed arrays are removed from the sandbox, so everything works on plain strings/arrays.
(function makeHelpers(nextSeed) {
  "use strict";

  // --- UTF-8 <-> byte arrays -------------------------------------------------------------
  function utf8Bytes(text) {
    const out = [];
    for (const ch of String(text)) {
      const c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63),
                    0x80 | (c & 63));
    }
    return out;
  }

  function utf8Text(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length;) {
      const b = bytes[i];
      let c, n;
      if (b < 0x80) { c = b; n = 1; }
      else if (b >= 0xf0) { c = b & 7; n = 4; }
      else if (b >= 0xe0) { c = b & 15; n = 3; }
      else if (b >= 0xc0) { c = b & 31; n = 2; }
      else throw new TypeError("base64.decode: the data is not valid UTF-8");
      for (let k = 1; k < n; k++) {
        const cont = bytes[i + k];
        if (cont === undefined || (cont & 0xc0) !== 0x80) {
          throw new TypeError("base64.decode: the data is not valid UTF-8");
        }
        c = (c << 6) | (cont & 63);
      }
      out += String.fromCodePoint(c);
      i += n;
    }
    return out;
  }

  // --- sha256 (FIPS 180-4) ---------------------------------------------------------------
  const K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
  ];

  function sha256(text) {
    const bytes = utf8Bytes(text);
    const bitLength = bytes.length * 8;
    bytes.push(0x80);
    while (bytes.length % 64 !== 56) bytes.push(0);
    // 64-bit big-endian length; strings never exceed 2^53 bits, so the high word is exact.
    const hi = Math.floor(bitLength / 0x100000000);
    bytes.push((hi >>> 24) & 255, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255);
    bytes.push((bitLength >>> 24) & 255, (bitLength >>> 16) & 255, (bitLength >>> 8) & 255,
               bitLength & 255);
    const h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
               0x1f83d9ab, 0x5be0cd19];
    const w = new Array(64);
    for (let off = 0; off < bytes.length; off += 64) {
      for (let i = 0; i < 16; i++) {
        const j = off + i * 4;
        w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
      }
      for (let i = 16; i < 64; i++) {
        const a = w[i - 15], b = w[i - 2];
        const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0;
      h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0;
      h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }
    return h.map((x) => (x >>> 0).toString(16).padStart(8, "0")).join("");
  }

  // --- uuid v4 -----------------------------------------------------------------------------
  // Randomness comes from the host (os.urandom, fresh per evaluation): sha256(seed:counter)
  // is a hash DRBG, so scripts get crypto-quality ids without any host call.
  let uuidCounter = 0;
  function uuid() {
    const hex = sha256(nextSeed() + ":" + uuidCounter++);
    const variant = ((parseInt(hex[16], 16) & 3) | 8).toString(16);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}` +
      `${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }

  // --- base64 ------------------------------------------------------------------------------
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const base64 = {
    encode(text) {
      const bytes = utf8Bytes(text);
      let out = "";
      for (let i = 0; i < bytes.length; i += 3) {
        const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
        out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] +
          (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") +
          (i + 2 < bytes.length ? B64[n & 63] : "=");
      }
      return out;
    },
    decode(data) {
      const clean = String(data).replace(/[\s=]/g, "").replace(/-/g, "+").replace(/_/g, "/");
      if (/[^A-Za-z0-9+/]/.test(clean) || clean.length % 4 === 1) {
        throw new TypeError("base64.decode: the input is not base64");
      }
      const bytes = [];
      let bits = 0, acc = 0;
      for (const ch of clean) {
        acc = (acc << 6) | B64.indexOf(ch);
        bits += 6;
        if (bits >= 8) { bits -= 8; bytes.push((acc >> bits) & 255); }
      }
      return utf8Text(bytes);
    },
  };

  // --- dates (UTC, ISO-8601 strings cross the boundary) -----------------------------------
  function toDate(value, who) {
    const d = value instanceof Date ? new Date(value.getTime())
      : new Date(typeof value === "number" ? value : String(value));
    if (Number.isNaN(d.getTime())) throw new RangeError(`${who}: invalid date ${String(value)}`);
    return d;
  }
  const UNIT_MS = { millisecond: 1, second: 1e3, minute: 6e4, hour: 36e5, day: 864e5, week: 6048e5 };
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const dates = {
    now: () => new Date().toISOString(),
    parse: (value) => toDate(value, "dates.parse").toISOString(),
    add(value, amount, unit = "day") {
      const d = toDate(value, "dates.add");
      const u = String(unit).replace(/s$/, "");
      if (u === "month" || u === "year") {
        const months = Number(amount) * (u === "year" ? 12 : 1);
        if (!Number.isInteger(months)) {
          throw new RangeError(`dates.add: ${u}s must be a whole number, got ${String(amount)}`);
        }
        // Clamp to the target month's last day (Jan 31 + 1 month = Feb 28/29), as date
        // libraries do; setUTCMonth alone would roll over into March.
        const day = d.getUTCDate();
        d.setUTCDate(1);
        d.setUTCMonth(d.getUTCMonth() + months);
        const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
        d.setUTCDate(Math.min(day, last));
      } else if (UNIT_MS[u] !== undefined) {
        d.setTime(d.getTime() + Number(amount) * UNIT_MS[u]);
      } else {
        throw new RangeError(`dates.add: unknown unit ${String(unit)}`);
      }
      return d.toISOString();
    },
    diff(a, b, unit = "millisecond") {
      const u = String(unit).replace(/s$/, "");
      if (UNIT_MS[u] === undefined) throw new RangeError(`dates.diff: unknown unit ${String(unit)}`);
      return (toDate(a, "dates.diff").getTime() - toDate(b, "dates.diff").getTime()) / UNIT_MS[u];
    },
    format(value, pattern = "YYYY-MM-DDTHH:mm:ss.SSSZ") {
      const d = toDate(value, "dates.format");
      const parts = {
        YYYY: pad(d.getUTCFullYear(), 4), MM: pad(d.getUTCMonth() + 1), DD: pad(d.getUTCDate()),
        HH: pad(d.getUTCHours()), mm: pad(d.getUTCMinutes()), ss: pad(d.getUTCSeconds()),
        SSS: pad(d.getUTCMilliseconds(), 3), Z: "Z",
      };
      return String(pattern).replace(/YYYY|MM|DD|HH|mm|ss|SSS|Z/g, (t) => parts[t]);
    },
  };

  // --- strings -----------------------------------------------------------------------------
  const strings = {
    capitalize: (s) => { s = String(s); return s.charAt(0).toUpperCase() + s.slice(1); },
    slugify: (s) => String(s).normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, ""),
    truncate(s, length, suffix = "…") {
      s = String(s);
      return s.length <= length ? s : s.slice(0, Math.max(0, length - suffix.length)) + suffix;
    },
    camelCase: (s) => String(s).toLowerCase().replace(/[^a-z0-9]+(.)?/g,
      (_, c) => (c ? c.toUpperCase() : "")),
    snakeCase: (s) => String(s).replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase()
      .replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, ""),
  };

  // --- JSON path lookup ($.a.b[0], $['key'], a.b, [*] wildcards) -------------------------
  const TOKEN = /\.?([A-Za-z_$][\w$]*)|\[(\d+|\*)\]|\[(?:'([^']*)'|"([^"]*)")\]|\.(\*)/y;
  function jsonPath(value, path, fallback = undefined) {
    let rest = String(path).trim();
    if (rest.startsWith("$")) rest = rest.slice(1);
    const steps = [];
    TOKEN.lastIndex = 0;
    while (TOKEN.lastIndex < rest.length) {
      const at = TOKEN.lastIndex;
      const m = TOKEN.exec(rest);
      if (m === null) throw new SyntaxError(`jsonPath: cannot parse '${path}' at offset ${at}`);
      steps.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5]);
    }
    let current = [value];
    let wild = false;
    for (const step of steps) {
      const next = [];
      for (const node of current) {
        if (node === null || typeof node !== "object") continue;
        if (step === "*") { wild = true; next.push(...Object.values(node)); }
        else if (Object.prototype.hasOwnProperty.call(node, step)) next.push(node[step]);
      }
      current = next;
    }
    if (wild) return current;
    return current.length ? current[0] : fallback;
  }

  return { uuid, sha256, base64, dates, strings, jsonPath };
})
