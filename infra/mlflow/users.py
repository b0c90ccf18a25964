"""Create (or re-password) the MLflow accounts of the stack, as the admin: one shot, idempotent.

Run by the ``mlflow-users`` job of docker-compose.yml and by the loopback stack once the
tracking server answers. The admin signs in with MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD (the bootstrap admin of the basic-auth app); each account is
``NAME=PASSWORD_VARIABLE`` on the command line, the password read from that environment
variable (never from the command line). An existing account gets the password again, so a
rotated password in .env is applied at the next start.
"""

from __future__ import annotations

import os
import sys
import time

from mlflow.exceptions import MlflowException, RestException
from mlflow.server.auth.client import AuthServiceClient

MIN_PASSWORD = 12
"""MLflow's basic-auth app refuses shorter passwords."""


def main(argv: list[str]) -> int:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    client = AuthServiceClient(uri)
    for spec in argv:
        name, _, variable = spec.partition("=")
        password = os.environ.get(variable, "")
        if not name or not password:
            print(f"mlflow-users: {spec!r}: give NAME=VARIABLE with VARIABLE set", file=sys.stderr)
            return 2
        if len(password) < MIN_PASSWORD:
            print(
                f"mlflow-users: {name}: the password in {variable} is shorter than "
                f"{MIN_PASSWORD} characters (MLflow refuses it); set a longer one in .env",
                file=sys.stderr,
            )
            return 2
        for attempt in range(30):  # the server may still be migrating its database
            try:
                try:
                    client.create_user(name, password)
                    print(f"mlflow-users: created {name}")
                except RestException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    client.update_user_password(name, password)
                    print(f"mlflow-users: {name} exists; password set again")
                break
            except RestException as exc:  # refused (bad admin password, bad value): at once
                print(f"mlflow-users: {name}: {exc}", file=sys.stderr)
                return 1
            except MlflowException as exc:  # the server not answering yet: retried
                if attempt == 29:
                    print(f"mlflow-users: {name}: {exc}", file=sys.stderr)
                    return 1
                time.sleep(2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
