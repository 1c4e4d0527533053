# shellcheck shell=bash
# Shared virtualenv setup for scripts/test, scripts/run-example, scripts/run-chat and scripts/docs.
#
# Source this file from the repository root. It expects one argument: the pip
# install target (for example '.[test]' or '.'). Afterwards "$venv" holds the
# path of a virtualenv with the project installed in editable mode.
#
# Environment:
#   TRIOWS_VENV  virtualenv directory (default: .venv)
#   PYTHON       interpreter used to create the virtualenv (default: python3)

triows_install_target="${1:-.}"
venv="${TRIOWS_VENV:-.venv}"
triows_python="${PYTHON:-python3}"

if ! command -v "$triows_python" >/dev/null 2>&1; then
    echo "error: Python interpreter '$triows_python' not found." >&2
    echo "       Install Python >= 3.10 or set PYTHON=/path/to/python3.x" >&2
    exit 1
fi

if ! "$triows_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "error: triows needs Python >= 3.10, but '$triows_python' is" \
        "$("$triows_python" -c 'import platform; print(platform.python_version())')." >&2
    echo "       Set PYTHON=/path/to/python3.10-or-newer and try again." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating virtualenv in $venv (using $triows_python)"
    if ! "$triows_python" -m venv "$venv"; then
        echo "error: could not create a virtualenv with '$triows_python'." >&2
        echo "       On Debian/Ubuntu install the 'python3-venv' package." >&2
        exit 1
    fi
fi

# Install only when what is installed would change: the project is installed in editable mode,
# so a change to its code needs nothing; a change to pyproject.toml (dependencies, entry
# points) or to the interpreter does, and so does a target not installed yet ('.[test]' covers
# '.', '.[docs]' and '.[redis]'). The stamp lists what was installed for which pyproject; delete it (or the
# virtualenv) to force a reinstall.
triows_stamp="$venv/.triows-installed"
triows_hash="$(
    { "$venv/bin/python" -c 'import sys; print(sys.version)'; cat pyproject.toml; } \
        | "$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
)"
triows_installed() {
    [ -f "$triows_stamp" ] && "$venv/bin/python" -c 'import triows' >/dev/null 2>&1 && {
        grep -qxF "$triows_hash $triows_install_target" "$triows_stamp" \
            || { case "$triows_install_target" in .|'.[docs]'|'.[redis]') true ;; *) false ;; esac \
                && grep -qxF "$triows_hash .[test]" "$triows_stamp"; }
    }
}
if triows_installed; then
    echo "==> triows ($triows_install_target) is installed in $venv and up to date"
else
    echo "==> installing triows ($triows_install_target) into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$triows_install_target"
    if ! grep -q "^$triows_hash " "$triows_stamp" 2>/dev/null; then
        : >"$triows_stamp"  # another pyproject: what was installed for the old one is stale
    fi
    echo "$triows_hash $triows_install_target" >>"$triows_stamp"
fi
unset -f triows_installed
unset triows_install_target triows_python triows_stamp triows_hash
