#!/usr/bin/env bash
# Builds everything into out/:
#   native parts (CMake)  -> out/bin (us-init, us-restorer, us-probe), out/lib/libunderstudy.so, out/tests
#   the .NET solution     -> Release build of Appliance.sln
#   the CLI               -> out/bin/hactl, a native executable (Native AOT)
#   the guest agent       -> out/bin/understudy-agent, one file on the installed .NET runtime
# hactl and the agent are published into out/publish/NAME (with their symbols); their
# executables are copied next to the native programs.
# Installs missing system packages with apt-get on a fresh Debian machine.
# Quiet by default; VERBOSE=1 ./build.sh shows every tool's output.
set -euo pipefail

# System packages the build and the tests need (Debian names). Keep this the only list.
# clang and zlib1g-dev: Native AOT links hactl with them. iproute2: hactl lab sets up its nodes' links with ip.
# systemd: the tests check packaging/systemd/understudy-agent.service with systemd-analyze.
SYSTEM_PACKAGES=(build-essential cmake pkg-config clang zlib1g-dev iproute2 systemd)

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
OUT=$ROOT/out
LOGS=$OUT/logs
VERBOSE=${VERBOSE:-0}

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf 'build: %s\n' "$*"; }
die() { printf 'build: FAILED: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: runs CMD; quiet mode keeps its output in out/logs/NAME.log and shows the
# end of it only if CMD fails.
step() {
    local name=$1; shift
    if [[ $VERBOSE == 1 ]]; then
        "$@" || die "$name (exit code $?)"
        return
    fi
    local log=$LOGS/$name.log rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        tail -n 60 "$log" >&2 || true
        die "$name (exit code $rc); the full output is in ${log#"$ROOT"/}"
    fi
}

install_system_packages() {
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "system packages present: ${SYSTEM_PACKAGES[*]}"
        return
    fi
    command -v apt-get >/dev/null || die "missing system packages ${missing[*]} and no apt-get; install them by hand"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing system packages ${missing[*]}; run ./build.sh as root to install them"
        sudo=(sudo)
    fi
    say "installing system packages: ${missing[*]}"
    step apt-update "${sudo[@]}" apt-get update
    step apt-install "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

build_native() {
    if [[ ! -f native/CMakeLists.txt ]]; then
        say "skipping the native build: native/CMakeLists.txt does not exist yet"
        return
    fi
    say "native: configure (out/native-build)"
    step cmake-configure cmake -S native -B "$OUT/native-build" -DCMAKE_BUILD_TYPE=Release
    say "native: compile"
    step cmake-build cmake --build "$OUT/native-build" -j2
    say "native: install into out/ (bin, lib, tests)"
    step cmake-install cmake --install "$OUT/native-build" --prefix "$OUT"
}

# The .NET runtime identifier of this machine, for the published executables.
runtime_id() {
    case $(uname -m) in
        x86_64) echo linux-x64 ;;
        aarch64) echo linux-arm64 ;;
        *) die "no .NET runtime identifier known for $(uname -m)" ;;
    esac
}

# publish NAME PROJECT: publishes PROJECT into out/publish/NAME and copies its executable NAME into out/bin.
publish() {
    local name=$1 project=$2 dir=$OUT/publish/$1
    say "dotnet: publish $name into out/bin"
    rm -rf "$dir"
    step "dotnet-publish-$name" dotnet publish "$project" -c Release -r "$(runtime_id)" -nologo -o "$dir"
    [[ -x $dir/$name ]] || die "dotnet publish did not produce $name (see out/logs/dotnet-publish-$name.log)"
    install -m 0755 "$dir/$name" "$OUT/bin/$name"
}

build_dotnet() {
    command -v dotnet >/dev/null || die "the .NET SDK (dotnet, version 10) is not on PATH; install it first"
    say "dotnet: restore Appliance.sln"
    step dotnet-restore dotnet restore Appliance.sln
    say "dotnet: build Appliance.sln (Release)"
    step dotnet-build dotnet build Appliance.sln -c Release --no-restore -nologo
    mkdir -p "$OUT/bin"
    publish hactl appliance/Understudy.Hactl/Understudy.Hactl.csproj
    publish understudy-agent guest-agent/Understudy.GuestAgent.Host/Understudy.GuestAgent.Host.csproj
}

mkdir -p "$OUT" "$LOGS"
install_system_packages
build_native
build_dotnet
say "done: out/bin/hactl is ready (try: out/bin/hactl demo)"
