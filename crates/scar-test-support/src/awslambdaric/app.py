"""A Lambda function for AWS's Python runtime client (awslambdaric), for scar's tests.

The event's `cmd_args` (what `scar run -n F ARGS...` sends) say what to do, as the Rust
test function's do: `context`, `fail`, `sleep MS`, `big BYTES`; `{"echo": X}` answers X; a
storage event prints which runtime process served it.
"""

import os
import time

time.sleep(int(os.environ.get("TEST_INIT_SLEEP_MS", "0")) / 1000)

INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if isinstance(event, dict) and "echo" in event:
        return event["echo"]
    if isinstance(event, dict) and "Records" in event:
        print(f"invocation {INVOCATIONS} of runtime {os.getpid()}", flush=True)
        return {"invocations": INVOCATIONS}
    args = (event or {}).get("cmd_args") or []
    op = args[0] if args else None
    if op == "context":
        env = os.environ.get
        return {
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_arn": context.invoked_function_arn,
            "trace_id": env("_X_AMZN_TRACE_ID"),
            "function_name": context.function_name,
            "memory": int(context.memory_limit_in_mb),
            "version": context.function_version,
            "log_group": context.log_group_name,
            "log_stream": context.log_stream_name,
            "invocations": INVOCATIONS,
            "pid": os.getpid(),
            "env": {
                name: env(name, "")
                for name in [
                    "LAMBDA_RUNTIME_DIR",
                    "LAMBDA_TASK_ROOT",
                    "AWS_LAMBDA_INITIALIZATION_TYPE",
                    "AWS_REGION",
                    "_HANDLER",
                    "FROM_IMAGE",
                    "FROM_INIT",
                ]
            },
            "cwd": os.getcwd(),
        }
    if op == "fail":
        raise ValueError("failed on purpose")
    if op == "sleep":
        time.sleep(int(args[1]) / 1000)
        return "slept"
    if op == "big":
        return "x" * int(args[1])
    raise RuntimeError(f"unknown command {op!r}")
