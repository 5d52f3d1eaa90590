#!/usr/bin/env bash
# Create .venv with Python 3.10 and install the project at exactly the versions
# in requirements/constraints.txt. Does nothing when they are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The review page's browser tests drive Debian's Chromium and its driver
# (/usr/bin/chromium, /usr/bin/chromedriver); `make pytest-future` runs the unit
# tests a year ahead with Debian's faketime (libfaketime). Installed with apt when
# this runs as root (or with password-less sudo); otherwise say what to install.
apt_install=""
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt_install="apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt_install="sudo apt-get"
  fi
fi
apt_updated=""
apt_get() {  # apt_get PACKAGE... (runs apt-get update once first)
  if [ -z "$apt_updated" ]; then $apt_install update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $apt_install install -y -qq "$@" >/dev/null
}
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ -n "$apt_install" ]; then
    echo "setup: installing chromium and chromium-driver (for the review page's browser tests)"
    apt_get chromium chromium-driver
  else
    echo "setup: warning: chromium and chromedriver are missing, and apt-get cannot be used" \
         "here (needs root). The browser tests (tests/test_review_browser.py) will fail until" \
         "they are installed: sudo apt-get install -y chromium chromium-driver" >&2
  fi
fi
if ! command -v faketime >/dev/null 2>&1; then
  if [ -n "$apt_install" ]; then
    echo "setup: installing faketime (make pytest-future runs the unit tests a year ahead)"
    apt_get faketime
  else
    echo "setup: warning: faketime is missing, and apt-get cannot be used here (needs root)." \
         "make pytest-future (part of make test) will fail until it is installed:" \
         "sudo apt-get install -y faketime" >&2
  fi
fi
# The store's tests run on a real PostgreSQL server too, and the scaling tests on a
# real Redis: tests/support/ starts them on loopback in temporary folders, from
# Debian's packages (postgresql puts initdb in /usr/lib/postgresql/<version>/bin).
if ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  if [ -n "$apt_install" ]; then
    echo "setup: installing postgresql (the tests run the store on a real PostgreSQL server)"
    apt_get postgresql
  else
    echo "setup: warning: PostgreSQL is missing, and apt-get cannot be used here (needs" \
         "root). The PostgreSQL tests will fail until it is installed:" \
         "sudo apt-get install -y postgresql" >&2
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [ -n "$apt_install" ]; then
    echo "setup: installing redis-server (the tests of several Rasa servers and bots use Redis)"
    apt_get redis-server
  else
    echo "setup: warning: redis-server is missing, and apt-get cannot be used here (needs" \
         "root). The Redis tests will fail until it is installed:" \
         "sudo apt-get install -y redis-server" >&2
  fi
fi

stamp=.venv/.installed
want=$(cat requirements/constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/aftercare ]; then
  exit 0
fi

find_python() {
  for candidate in python3.10 "$(pyenv root 2>/dev/null)/versions/"3.10*/bin/python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python) || { echo "setup: Python 3.10 is needed (Rasa 3.6 does not run on 3.11+). Install it, e.g. 'pyenv install 3.10'." >&2; exit 1; }
  echo "setup: creating .venv with $python"
  "$python" -m venv .venv
fi
echo "setup: installing pinned dependencies (the first time takes a few minutes)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==24.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c requirements/constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
echo "setup: done"
