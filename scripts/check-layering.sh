#!/usr/bin/env bash
# Fails when a file under src/ includes a header from a folder that
# scripts/layers.txt does not allow it to depend on.
#   scripts/check-layering.sh [--src DIR] [--layers FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
src=src
layers=scripts/layers.txt
while (($#)); do
  case "$1" in
    --src) src=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    *) echo "check-layering: unknown argument $1" >&2; exit 2 ;;
  esac
done
exec python3 - "$src" "$layers" <<'PY'
import os, re, sys

src, layers_file = sys.argv[1], sys.argv[2]
allowed = {}
for number, line in enumerate(open(layers_file), 1):
    line = line.split('#', 1)[0].strip()
    if not line:
        continue
    if ':' not in line:
        sys.exit(f"{layers_file}:{number}: expected 'folder: dependencies'")
    name, deps = line.split(':', 1)
    allowed[name.strip()] = deps.split()

include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
problems, files = [], 0
for root, _, names in os.walk(src):
    for name in sorted(names):
        if not name.endswith(('.h', '.cpp')):
            continue
        path = os.path.join(root, name)
        rel = os.path.relpath(path, src)
        unit = rel.split(os.sep)[0]
        if unit not in allowed:
            problems.append(f"{path}: {unit} is not listed in {layers_file}")
            continue
        files += 1
        for number, text in enumerate(open(path, encoding='utf-8', errors='replace'), 1):
            m = include.match(text)
            if not m:
                continue
            header = m.group(1)
            if '/' not in header:
                continue  # generated (version.h) or same-folder relative
            folder = header.split('/')[0]
            if folder == unit or header in allowed[unit] or folder in allowed[unit]:
                continue
            if not os.path.isdir(os.path.join(src, folder)):
                continue  # not one of ours
            problems.append(f"{path}:{number}: {unit} may not include \"{header}\" "
                            f"(allowed: {' '.join(allowed[unit]) or 'nothing'}; see {layers_file})")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check-layering: {files} files keep to {layers_file}")
PY
