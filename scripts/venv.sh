# Sourced by the scripts that need Python packages from PyPI (check-k8s.sh, check-openapi.sh,
# acro-venv.sh): ensure_venv DIR WHO "REQUIREMENTS" makes a venv in DIR with exactly those
# pinned requirements, once; a second call reuses it while DIR/.requirements names the same.
ensure_venv() {
  local venv="$1" who="$2" requirements="$3"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$requirements" ]; then
    return 0
  fi
  echo "$who: installing $requirements into $venv"
  python3 -m venv --clear "$venv" || {
    echo "$who: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; return 2; }
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.requirements"
}
