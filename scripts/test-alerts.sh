#!/usr/bin/env bash
# Checks the Prometheus configuration and alert rules, then runs the alert unit tests with promtool.
# Installs promtool (Debian/Ubuntu package `prometheus`) when it is missing. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { echo "promtool not found and apt-get unavailable; install Prometheus' promtool" >&2; exit 1; }
  sudo=''
  [ "$(id -u)" -eq 0 ] || sudo='sudo'
  echo "promtool not found; installing the prometheus package" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Only promtool is wanted: stop the daemon the package may have started under systemd.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus
  fi
fi

promtool --version 2>&1 | sed -n 1p
promtool check config ops/prometheus/prometheus.yml
promtool check rules ops/prometheus/alerts.yml
promtool test rules ops/prometheus/alerts.test.yml
