#!/bin/sh
# As AWS's base images start their runtime: the handler is CMD's (TEST_HANDLER overrides it,
# so that a test can name one that does not exist).
exec /usr/bin/python3 -m awslambdaric "${TEST_HANDLER:-$1}"
