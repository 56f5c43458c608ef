#!/usr/bin/env bash
# System packages the platform and its tests need, from the machine's own apt sources (no host is named here).
# Idempotent: apt runs only when something is missing.
set -euo pipefail

packages=(
  python3 python3-venv python3-dev gcc   # the venv; some wheels compile
  debootstrap                            # builds the private Debian sid root that holds Asterisk 22
  sip-tester                             # SIPp: real SIP phones and devices in tests
  sox espeak-ng                          # audio tools: prompt rendering and measurement
  ffmpeg                                 # pydub's codec backend (recording compression)
  chromium chromium-driver               # headless browser tests of the web panel
  fonts-wqy-microhei                     # a CJK font, so the zh-CN panel renders in headless screenshots
  postgresql-client                      # pg_isready for CI and operators
  ca-certificates
)
# Only for `make lint` and `make test` (--lint, --tests): ESLint for the panel's scripts runs on Node.js. A machine
# with Node.js and npm already (however installed: some Node.js packages bring their own npm) keeps them.
if [ "${1:-}" = "--lint" ] || [ "${1:-}" = "--tests" ]; then
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi
# Only for `make test` (--tests): the fault tests start a PostgreSQL server of their own and stop it for real
# (tests/harness.py PrivatePostgres), and cut the platform's AMI connection with `ss -K`; the MQTT tests run the
# real Mosquitto (a broker of their own on a free port, as `callcenter mqtt start` runs the platform's). `make run`
# needs none of them: without mosquitto it runs with MQTT off and says so (install it to have the devices' channel).
if [ "${1:-}" = "--tests" ]; then
  packages+=(postgresql iproute2 mosquitto)
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-packages: this needs a Debian or Ubuntu machine (apt-get); install these by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-packages: missing ${missing[*]}; run as root (make run / make test do so on a fresh machine)" >&2
  exit 1
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
