#!/usr/bin/env bash
# Fills .device-bun/ (git-ignored) with what Bun + Dawn need on the GPU machine, for
# `bash bench/h200_long.sh bun`: run here, in the project's root, after `npm install`.
#
#   bun.xz            the Bun binary (node_modules/bun/bin/bun.exe, 107 MB; ~39 MB as xz -6)
#   webgpu.tar.xz     the npm `webgpu` package's index.js, package.json and dist/linux-x64/dawn.node
#                     (dawn.node 21.5 MB; ~4.9 MB as xz): all `import("webgpu")` needs
#   *.deb             the Vulkan loader packages (as ../shared/device/prepare.sh fetches them)
#   boot.sh           sourced at the start of the device command: unpacks all of it under /tmp/apekit-bun
#                     and links node_modules/webgpu there; sets $BUN
# About 45 MB in all: too much to travel with .device/ (Deno, ~31 MB) in one call's 64 MiB, so the
# Bun run is a call of its own, carrying [".device-bun"] alone:
#   source .device-bun/boot.sh; bash bench/h200_long.sh bun
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
mkdir -p .device-bun
grep -qx '/.device-bun/' .git/info/exclude 2>/dev/null || echo '/.device-bun/' >> .git/info/exclude
d=.device-bun

if ls .device/libvulkan1_*.deb > /dev/null 2>&1; then
  cp .device/*.deb $d/
elif ! ls $d/libvulkan1_*.deb > /dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq > /dev/null
  (cd $d && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2> /dev/null)
fi

bun_bin=${BUN_BIN:-$(ls node_modules/@oven/bun-linux-x64/bin/bun node_modules/bun/bin/bun.exe 2> /dev/null | head -1 || true)}
[ -x "$bun_bin" ] || { echo "no bun binary in node_modules: npm install the project first, or set BUN_BIN" >&2; exit 1; }
if [ ! -f $d/bun.xz ] || [ "$bun_bin" -nt $d/bun.xz ]; then
  xz -T0 -6 -c "$bun_bin" > $d/bun.xz.part && mv $d/bun.xz.part $d/bun.xz
fi
w=node_modules/webgpu
[ -f $w/dist/linux-x64/dawn.node ] || { echo "no $w/dist/linux-x64/dawn.node: npm install the project first" >&2; exit 1; }
if [ ! -f $d/webgpu.tar.xz ] || [ $w/dist/linux-x64/dawn.node -nt $d/webgpu.tar.xz ]; then
  tar -C node_modules -cf - webgpu/index.js webgpu/package.json webgpu/dist/linux-x64/dawn.node | xz -T0 -6 > $d/webgpu.tar.xz
fi

cat > $d/boot.sh << 'BOOT'
# sourced at the start of a device command: Vulkan loader for the NVIDIA driver, Bun in $BUN, and the
# npm `webgpu` package (Dawn) under /tmp/apekit-bun, linked as node_modules/webgpu
for f in .device-bun/*.deb; do dpkg -x "$f" / ; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=/tmp BUN=/tmp/apekit-bun/bun
mkdir -p /tmp/apekit-bun
[ -x /tmp/apekit-bun/bun ] || { xz -d -c .device-bun/bun.xz > /tmp/apekit-bun/bun.part && mv /tmp/apekit-bun/bun.part /tmp/apekit-bun/bun; }
chmod +x /tmp/apekit-bun/bun
[ -f /tmp/apekit-bun/webgpu/dist/linux-x64/dawn.node ] || xz -d -c .device-bun/webgpu.tar.xz | tar -C /tmp/apekit-bun -xf -
mkdir -p node_modules
[ -e node_modules/webgpu/index.js ] || { rm -rf node_modules/webgpu; ln -s /tmp/apekit-bun/webgpu node_modules/webgpu; }
BOOT
ls -l $d
du -sh $d
echo "ready: carry [\".device-bun\"] (alone: it does not fit beside .device) and begin the command with: source .device-bun/boot.sh;"
