#!/bin/sh
# One-shot job of docker-compose.yml (config-check): every service waits for it. It refuses to
# let the stack start while a setting named in CHECKED_SETTINGS is empty or still holds a
# change-me placeholder of .env.example, and names each such setting (never its value).
set -eu
status=0
for name in ${CHECKED_SETTINGS:?CHECKED_SETTINGS lists the settings to check}; do
    eval "value=\${$name-}"
    case "$value" in
        "" | *change-me*)
            echo "config-check: $name still holds the change-me placeholder of .env.example" \
                "(or is empty); set a real value in .env, then run docker compose up -d again" >&2
            status=1
            ;;
    esac
done
[ "$status" -eq 0 ] && echo "config-check: no placeholder left in $CHECKED_SETTINGS"
exit "$status"
