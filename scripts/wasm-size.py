#!/usr/bin/env python3
"""Where the bytes of a wasm module are: sections, biggest functions, bytes per crate.

    scripts/wasm-size.py MODULE.wasm [--top N] [--crate NAME] [--grep TEXT] [--base OTHER.wasm]

MODULE must carry its name section for the function and crate tables (build it with
`MESHGUARD_WASM_NAMES=1 ./scripts/build-wasm.sh`, see DEVELOPERS.md); without one
only the section table is printed. `--base` prints each crate's change against another module
(e.g. the build of `main`). `--crate` lists the biggest functions of one crate only, `--grep` those
whose demangled name contains TEXT. Python 3 standard library only.

A function's bytes are its body in the code section (locals + instructions, with its size
prefix). A generic function instantiated for another crate's types counts for the crate that
defines it (`Vec<T>::push` is `alloc`); a trait impl `<A as B>::f` counts for A's crate unless A
is a std crate (core/alloc/std) and B is not, then for B's (where the impl is written).
"""

import argparse
import re
import sys
from collections import defaultdict

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
    6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
    12: "datacount", 13: "tag",
}
STD_CRATES = {"core", "alloc", "std", "compiler_builtins", "panic_abort", "dlmalloc"}


class Reader:
    """A cursor over the module bytes with LEB128 decoding."""

    def __init__(self, data, pos=0, end=None):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def byte(self):
        if self.pos >= self.end:
            raise ValueError("unexpected end of module")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self):
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def name(self):
        n = self.uleb()
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s


def parse(data):
    """Returns (sections, imported function count, code bodies [(size)], function names)."""
    if data[:4] != b"\0asm":
        raise ValueError("not a wasm module")
    r = Reader(data, 8)
    sections, bodies, names, imported_funcs = [], [], {}, 0
    while r.pos < len(data):
        sid = r.byte()
        size = r.uleb()
        start = r.pos
        label = SECTION_NAMES.get(sid, f"id {sid}")
        if sid == 0:
            sub = Reader(data, start, start + size)
            label = "custom:" + sub.name()
            if label == "custom:name":
                names = parse_names(data, sub.pos, start + size)
        elif sid == 2:
            sub = Reader(data, start, start + size)
            for _ in range(sub.uleb()):
                sub.name()
                sub.name()
                kind = sub.byte()
                if kind == 0:
                    sub.uleb()
                    imported_funcs += 1
                elif kind == 1:  # table: reftype + limits
                    sub.byte()
                    skip_limits(sub)
                elif kind == 2:
                    skip_limits(sub)
                elif kind == 3:  # global: valtype + mutability
                    sub.byte()
                    sub.byte()
                else:  # tag
                    sub.byte()
                    sub.uleb()
        elif sid == 10:
            sub = Reader(data, start, start + size)
            for _ in range(sub.uleb()):
                body_start = sub.pos
                n = sub.uleb()
                sub.pos += n
                bodies.append(sub.pos - body_start)
        sections.append((label, size))
        r.pos = start + size
    return sections, imported_funcs, bodies, names


def skip_limits(r):
    flags = r.byte()
    r.uleb()
    if flags & 1:
        r.uleb()


def parse_names(data, pos, end):
    """Function names (subsection 1) of the name section."""
    r = Reader(data, pos, end)
    names = {}
    while r.pos < end:
        sub_id = r.byte()
        size = r.uleb()
        sub_end = r.pos + size
        if sub_id == 1:
            for _ in range(r.uleb()):
                idx = r.uleb()
                names[idx] = r.name()
        r.pos = sub_end
    return names


LEGACY_ESCAPES = {
    "$SP$": "@", "$BP$": "*", "$RF$": "&", "$LT$": "<", "$GT$": ">", "$LP$": "(",
    "$RP$": ")", "$C$": ",",
}


def demangle_legacy(sym):
    """`_ZN…E` → `path::to::item` (hash dropped)."""
    body = sym[3:] if sym.startswith("_ZN") else sym[2:]
    parts, i = [], 0
    while i < len(body) and body[i].isdigit():
        j = i
        while j < len(body) and body[j].isdigit():
            j += 1
        n = int(body[i:j])
        parts.append(body[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    out = []
    for p in parts:
        if p.startswith("_$"):
            p = p[1:]
        for k, v in LEGACY_ESCAPES.items():
            p = p.replace(k, v)
        p = re.sub(r"\$u([0-9a-f]{2,6})\$", lambda m: chr(int(m.group(1), 16)), p)
        p = p.replace("..", "::")
        out.append(p)
    return "::".join(out) if out else sym


BASIC_TYPES = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
    "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16",
    "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}


class V0:
    """Recursive-descent demangler for Rust's v0 scheme (the Rust std library is mangled so);
    renders paths like the legacy demangler: `crate::module::item`, `<Type as Trait>::item`."""

    def __init__(self, sym):
        self.s, self.i, self.depth = sym[2:], 0, 0

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    def take(self):
        c = self.peek()
        self.i += 1
        return c

    def base62(self):
        if self.peek() == "_":
            self.i += 1
            return 0
        value = 0
        while self.peek() and self.peek() != "_":
            c = self.take()
            digit = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".find(c)
            if digit < 0:
                raise ValueError("bad base-62 digit")
            value = value * 62 + digit
        self.i += 1
        return value + 1

    def disambiguator(self):
        if self.peek() == "s":
            self.i += 1
            self.base62()

    def ident(self):
        self.disambiguator()
        self.take() if self.peek() == "u" else None
        j = self.i
        while self.peek().isdigit():
            self.i += 1
        if j == self.i:
            raise ValueError("identifier expected")
        n = int(self.s[j:self.i])
        if self.peek() == "_":
            self.i += 1
        name = self.s[self.i:self.i + n]
        self.i += n
        return name

    def backref(self, parse):
        target = self.base62()
        saved = self.i
        self.i = target
        self.depth += 1
        if self.depth > 100:
            raise ValueError("backref loop")
        out = parse()
        self.depth -= 1
        self.i = saved
        return out

    def path(self):
        c = self.take()
        if c == "C":
            return self.ident()
        if c == "M":
            self.disambiguator()
            self.path()
            return f"<{self.type()}>"
        if c == "X":
            self.disambiguator()
            self.path()
            ty = self.type()
            return f"<{ty} as {self.path()}>"
        if c == "Y":
            ty = self.type()
            return f"<{ty} as {self.path()}>"
        if c == "N":
            ns = self.take()
            parent = self.path()
            name = self.ident()
            if ns == "C":
                return f"{parent}::{{closure}}"
            if ns.isupper():
                return f"{parent}::{{{name or 'shim'}}}"
            return f"{parent}::{name}" if name else parent
        if c == "I":
            base = self.path()
            args = []
            while self.peek() != "E":
                if not self.peek():
                    raise ValueError("unterminated generic arguments")
                args.append(self.generic_arg())
            self.i += 1
            return f"{base}<{', '.join(a for a in args if a)}>"
        if c == "B":
            return self.backref(self.path)
        raise ValueError(f"path expected at {c!r}")

    def generic_arg(self):
        if self.peek() == "L":
            self.i += 1
            self.base62()
            return ""
        if self.peek() == "K":
            self.i += 1
            return self.const()
        return self.type()

    def const(self):
        c = self.peek()
        if c == "p":
            self.i += 1
            return "_"
        if c == "B":
            self.i += 1
            return self.backref(self.const)
        self.type()
        if self.peek() == "n":
            self.i += 1
        j = self.s.index("_", self.i)
        value = self.s[self.i:j]
        self.i = j + 1
        return f"0x{value}" if value else "0"

    def type(self):
        c = self.peek()
        if c in BASIC_TYPES:
            self.i += 1
            return BASIC_TYPES[c]
        if c in "RQ":
            self.i += 1
            if self.peek() == "L":
                self.i += 1
                self.base62()
            return ("&" if c == "R" else "&mut ") + self.type()
        if c in "PO":
            self.i += 1
            return ("*const " if c == "P" else "*mut ") + self.type()
        if c == "A":
            self.i += 1
            ty = self.type()
            return f"[{ty}; {self.const()}]"
        if c == "S":
            self.i += 1
            return f"[{self.type()}]"
        if c == "T":
            self.i += 1
            items = []
            while self.peek() != "E":
                if not self.peek():
                    raise ValueError("unterminated tuple")
                items.append(self.type())
            self.i += 1
            return f"({', '.join(items)})"
        if c == "F":
            self.i += 1
            if self.peek() == "G":
                self.i += 1
                self.base62()
            if self.peek() == "U":
                self.i += 1
            if self.peek() == "K":
                self.i += 1
                if self.peek() == "C":
                    self.i += 1
                else:
                    self.ident()
            params = []
            while self.peek() != "E":
                if not self.peek():
                    raise ValueError("unterminated fn type")
                params.append(self.type())
            self.i += 1
            return f"fn({', '.join(params)}) -> {self.type()}"
        if c == "D":
            self.i += 1
            if self.peek() == "G":
                self.i += 1
                self.base62()
            traits = []
            while self.peek() != "E":
                if not self.peek():
                    raise ValueError("unterminated dyn type")
                traits.append(self.path())
                while self.peek() == "p":
                    self.i += 1
                    self.ident()
                    self.type()
            self.i += 1
            if self.peek() == "L":
                self.i += 1
                self.base62()
            return "dyn " + " + ".join(traits)
        if c == "B":
            self.i += 1
            return self.backref(self.type)
        return self.path()


def demangle_v0(sym):
    """`_R…` → `path::to::item`; the symbol itself when it does not parse."""
    try:
        d = V0(sym)
        if d.peek().isdigit():  # encoding version
            d.i += 1
        return d.path()
    except (ValueError, IndexError, RecursionError):
        return sym


def demangle(sym):
    if sym.startswith("_ZN") or (sym.startswith("_Z") and sym[2:3].isdigit()):
        return demangle_legacy(sym)
    if sym.startswith("_R"):
        return demangle_v0(sym)
    return sym


PRIMITIVES = set(BASIC_TYPES.values()) | {"impl"}


def crate_of_path(path):
    """The crate of a type or trait path; "core" for primitives, slices, tuples and pointers,
    None for a bare generic parameter (`T`, `&mut A`: no crate of its own)."""
    path = path.strip()
    while True:
        stripped = re.sub(r"^(&|\*|mut |const |dyn )", "", path).strip()
        if stripped == path:
            break
        path = stripped
    if path.startswith(("[", "(", "fn(")):
        return "core"
    if path.startswith("<"):
        inner = split_impl(path)
        return crate_of_path(inner[0]) if inner else None
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", path)
    if not m:
        return None
    word = m.group(0)
    if word in PRIMITIVES:
        return "core"
    if "::" not in path:
        return None  # a generic parameter
    return word


def split_impl(name):
    """`<A as B>::rest` → (A, B); `<A>::rest` → (A, None); otherwise None."""
    if not name.startswith("<"):
        return None
    depth = 0
    for i, c in enumerate(name):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
            if depth == 0:
                inner = name[1:i]
                break
    else:
        return None
    depth = 0
    for i, c in enumerate(inner):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif depth == 0 and inner.startswith(" as ", i):
            return inner[:i], inner[i + 4:]
    return inner, None


def crate_of(name):
    """The crate a demangled function name belongs to (see the module doc)."""
    impl = split_impl(name)
    if impl is None:
        if "::" not in name:
            return "(exports, C)"  # proxy_on_* entry points, memcpy, compiler-rt
        return crate_of_path(name) or "?"
    self_ty, trait = impl
    self_crate = crate_of_path(self_ty)
    trait_crate = crate_of_path(trait) if trait is not None else None
    if self_ty.startswith("impl "):  # `<impl str>::f` (legacy inherent impls on primitives)
        return "core"
    if trait_crate and (self_crate is None or (self_crate in STD_CRATES and trait_crate not in STD_CRATES)):
        return trait_crate
    return self_crate or trait_crate or "?"


def crate_table(imported, bodies, names):
    per = defaultdict(lambda: [0, 0])
    for i, size in enumerate(bodies):
        raw = names.get(imported + i)
        crate = crate_of(demangle(raw)) if raw else "(unnamed)"
        per[crate][0] += size
        per[crate][1] += 1
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module")
    ap.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    ap.add_argument("--crate", help="list only this crate's functions")
    ap.add_argument("--grep", help="list only functions whose name contains this text")
    ap.add_argument("--base", help="another module: per-crate change against it")
    args = ap.parse_args()

    with open(args.module, "rb") as f:
        data = f.read()
    sections, imported, bodies, names = parse(data)
    total = len(data)
    print(f"{args.module}: {total:,} bytes, {len(bodies)} functions"
          f" ({imported} imported), name section: {'yes' if names else 'no'}")
    print()
    print(f"{'section':<28}{'bytes':>12}{'share':>8}")
    for label, size in sections:
        print(f"{label:<28}{size:>12,}{100 * size / total:>7.1f}%")
    print(f"{'(headers)':<28}{total - sum(s for _, s in sections):>12,}")
    if not names:
        print("\nno name section: build with MESHGUARD_WASM_NAMES=1 ./scripts/build-wasm.sh for the"
              " function and crate tables", file=sys.stderr)
        return

    code = sum(bodies)
    per = crate_table(imported, bodies, names)
    base = None
    if args.base:
        with open(args.base, "rb") as f:
            _, b_imported, b_bodies, b_names = parse(f.read())
        if not b_names:
            sys.exit(f"{args.base}: no name section")
        base = crate_table(b_imported, b_bodies, b_names)
    print()
    header = f"{'crate':<28}{'bytes':>12}{'share':>8}{'functions':>11}"
    if base is not None:
        header += f"{'base':>12}{'change':>10}"
    print(header + "   (function bodies in the code section)")
    crates = set(per) | (set(base) if base else set())
    for crate in sorted(crates, key=lambda c: -max(per[c][0], base[c][0] if base else 0)):
        size, count = per[crate]
        line = f"{crate:<28}{size:>12,}{100 * size / code:>7.1f}%{count:>11}"
        if base is not None:
            line += f"{base[crate][0]:>12,}{size - base[crate][0]:>+10,}"
        print(line)
    line = f"{'total':<28}{code:>12,}{100.0:>7.1f}%{len(bodies):>11}"
    if base is not None:
        b_code = sum(v[0] for v in base.values())
        line += f"{b_code:>12,}{code - b_code:>+10,}"
    print(line)

    rows = []
    for i, size in enumerate(bodies):
        raw = names.get(imported + i, f"func[{imported + i}]")
        name = demangle(raw)
        crate = crate_of(name)
        if args.crate and crate != args.crate:
            continue
        if args.grep and args.grep not in name:
            continue
        rows.append((size, crate, name))
    rows.sort(reverse=True)
    print()
    print(f"{'bytes':>9}  {'crate':<18} function (biggest {min(args.top, len(rows))} of {len(rows)})")
    for size, crate, name in rows[:args.top]:
        if len(name) > 150:
            name = name[:147] + "..."
        print(f"{size:>9,}  {crate:<18} {name}")


if __name__ == "__main__":
    main()
