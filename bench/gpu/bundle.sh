#!/usr/bin/env bash
# Packs what bench/gpu/run_headline.sh needs on the GPU machine, which has the CUDA driver,
# PyTorch and (in its Python packages) cuBLAS and cuDNN, but none of our Debian libraries and no
# package registry: the stripped `tempo` and `cuda_backend_test` binaries, and every shared
# library they load (ldd) except the C/C++ runtime (libc, libm, libstdc++, libgcc_s, ld-linux,
# ...) and the CUDA libraries (cudart, cuBLAS, cuDNN, ...), which run_headline.sh finds in the
# GPU machine's Python packages (nvidia-*-cu13 wheels) instead.
#
# Usage: bench/gpu/bundle.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR  a CUDA build with tempo and cuda_backend_test built (default: build-cuda)
#   OUT_DIR    default: BUILD_DIR/gpu-bundle. Writes OUT_DIR/{bin,lib}/ (~110 MB) and, to carry,
#              OUT_DIR/../gpu-carry/gpu-bundle.tar.xz (~17 MB; the device tool carries 64 MiB).
# Carry it with the device tool as carry=["build-cuda/gpu-carry"] (build dirs are git-ignored,
# so it does not otherwise travel).
set -euo pipefail
build=${1:-build-cuda}
out=${2:-$build/gpu-bundle}
bins=("$build/tempo" "$build/tests/cuda_backend_test")
module=$build/libtempo_cuda.so
for b in "${bins[@]}"; do
  [[ -x $b ]] || { echo "bundle.sh: $b is missing: build it first (docs/gpu.md)" >&2; exit 1; }
done
if [[ ! -f $module ]] || ! readelf -d "$module" | grep -q 'libcudart'; then
  echo "bundle.sh: $module is missing: no CUDA backend (configure with -DTEMPO_CUDA=ON)" >&2
  exit 1
fi

carry=$(dirname "$out")/gpu-carry
archive=$carry/$(basename "$out").tar.xz
rm -rf "$out" "$archive"
mkdir -p "$carry"
mkdir -p "$out/bin" "$out/lib"
for b in "${bins[@]}"; do
  cp "$b" "$out/bin/"
  strip --strip-unneeded "$out/bin/$(basename "$b")"
done
cp "$module" "$out/lib/"
strip --strip-unneeded "$out/lib/$(basename "$module")"

# Everything the binaries load, minus what the GPU machine has itself. The C runtime must come
# from that machine (a copied libc does not mix with its loader); the CUDA libraries must match
# its driver and are large (cuBLASLt alone is ~500 MB).
skip='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnvrtc|libnvJitLink)\.so'
ldd "${bins[@]}" "$module" | awk '/=> \// {print $1, $3}' | sort -u | while read -r name path; do
  if [[ $name =~ $skip || $name == libtempo_cuda.so ]]; then continue; fi
  cp -L "$path" "$out/lib/$name"
done
missing=$(ldd "${bins[@]}" "$module" | grep 'not found' || true)
if [[ -n $missing ]]; then
  echo "bundle.sh: unresolved libraries here already:" >&2
  echo "$missing" >&2
  exit 1
fi

{
  echo "built $(date -u +%FT%TZ) on $(uname -n) from $(git -C "$(dirname "$0")/../.." rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "glibc needed: $(objdump -T "$out"/bin/* "$out"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
  echo "libstdc++ needed: $(objdump -T "$out"/bin/* "$out"/lib/* 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)"
  echo "left to the GPU machine:"
  ldd "${bins[@]}" "$module" | awk '/=> \// {print "  " $1}' | sort -u | grep -E "$(echo "$skip" | sed 's/^\^/  /')" || true
} >"$out/MANIFEST"
(cd "$out" && ls -l bin lib) >>"$out/MANIFEST"
tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 -6 >"$archive"
echo "bundle.sh: $out ($(du -sh "$out" | cut -f1)) -> $archive ($(du -h "$archive" | cut -f1))"
cat "$out/MANIFEST" | head -8
