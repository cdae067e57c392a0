"""A real AWS client (boto3) against `scar serve`'s Lambda Invoke API.

Usage: invoke_api.py ENDPOINT CHECK, where CHECK is one of the functions below named
`check_*`. Each asserts what Lambda would answer and prints one JSON line for the Rust test
that drives it (crates/scar-cli/tests/it/serve_http.rs). Exit status 0: every assertion held.
"""

import base64
import concurrent.futures
import http.client
import json
import sys
import time
import urllib.parse

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = sys.argv[1]


def client():
    return boto3.client(
        "lambda",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        # A 429 must reach the test, not be retried away.
        config=botocore.config.Config(
            retries={"total_max_attempts": 1}, read_timeout=120
        ),
    )


def invoke(name, script, **kwargs):
    return client().invoke(
        FunctionName=name, Payload=json.dumps({"script": script}), **kwargs
    )


def check_clients():
    lam = client()
    # RequestResponse: scar's response, the log's tail when asked for.
    r = invoke("echo", "echo hello from boto3", LogType="Tail")
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r
    assert r["ExecutedVersion"] == "$LATEST", r
    body = json.loads(r["Payload"].read())
    assert body["output"] == "hello from boto3\n", body
    assert body["exit_code"] == 0, body
    log = base64.b64decode(r["LogResult"]).decode()
    assert "START RequestId: " + body["request_id"] in log, log
    assert "REPORT RequestId: " + body["request_id"] in log, log
    assert r["ResponseMetadata"]["RequestId"] == body["request_id"], r

    # The same function by ARN, by partial ARN, with $LATEST.
    for name in [
        "arn:aws:lambda:us-east-1:123456789012:function:echo",
        "123456789012:function:echo",
        "echo:$LATEST",
    ]:
        r = invoke(name, "echo by-arn")
        assert json.loads(r["Payload"].read())["output"] == "by-arn\n", name

    # A function error: Lambda's error body, X-Amz-Function-Error: Unhandled.
    r = invoke("echo", "echo failing; exit 3")
    assert r["StatusCode"] == 200, r
    assert r["FunctionError"] == "Unhandled", r
    error = json.loads(r["Payload"].read())
    assert error["errorType"] == "ScarFunctionError", error
    inner = json.loads(error["errorMessage"])
    assert inner["exit_code"] == 3 and inner["output"] == "failing\n", inner

    # DryRun: 204, nothing run.
    r = invoke("echo", "echo never", InvocationType="DryRun")
    assert r["StatusCode"] == 204, r

    # Event: 202 at once; it runs in the background (the test reads its log).
    started = time.monotonic()
    r = invoke("echo", "sleep 1; echo event-ran", InvocationType="Event")
    assert r["StatusCode"] == 202, r
    assert time.monotonic() - started < 1, "Event waited for the run"
    event_id = r["ResponseMetadata"]["RequestId"]

    # A missing function: ResourceNotFoundException, 404.
    try:
        invoke("no-such-function", "echo")
        raise AssertionError("a missing function was invoked")
    except lam.exceptions.ResourceNotFoundException as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert "no-such-function" in e.response["Error"]["Message"], e.response

    # GetFunction, as `aws lambda get-function` calls it.
    f = lam.get_function(FunctionName="echo")
    assert f["Configuration"]["FunctionName"] == "echo", f
    assert f["Configuration"]["Timeout"] == 30, f

    print(json.dumps({"event_request_id": event_id}))


def check_warm():
    first = json.loads(
        invoke("echo", "echo $AWS_LAMBDA_LOG_STREAM_NAME > /tmp/mark; cat /tmp/mark")[
            "Payload"
        ].read()
    )
    second = json.loads(invoke("echo", "cat /tmp/mark")["Payload"].read())
    # The second request ran in the first's sandbox: its /tmp, its log stream.
    assert second["exit_code"] == 0, second
    assert second["output"] == first["output"], (first, second)
    print(json.dumps({"stream": first["output"].strip()}))


def check_reclaimed():
    invoke("echo", "echo x > /tmp/mark")
    time.sleep(4)
    r = invoke("echo", "cat /tmp/mark")
    # The idle sandbox was stopped: a new one has a fresh /tmp, and cat fails.
    assert r.get("FunctionError") == "Unhandled", r
    after = json.loads(json.loads(r["Payload"].read())["errorMessage"])
    assert after["exit_code"] == 1 and "No such file" in after["output"], after
    print(json.dumps({"reclaimed": True}))


def check_concurrency():
    n = 4
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        runs = list(
            pool.map(
                lambda i: json.loads(
                    invoke("echo", f"sleep 2; echo run-{i}")["Payload"].read()
                ),
                range(n),
            )
        )
    elapsed = time.monotonic() - started
    assert sorted(r["output"] for r in runs) == [f"run-{i}\n" for i in range(n)], runs
    # In parallel, each in its own sandbox: far less than n runs of 2 s one after another.
    assert elapsed < 2 * n - 2, elapsed
    streams = {r["log_stream"] for r in runs}
    assert len(streams) == n, streams

    # Reserved concurrency 1: a second request while the first runs is throttled.
    lam = client()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(invoke, "single", "sleep 3; echo first")
        time.sleep(1.5)
        try:
            invoke("single", "echo second")
            raise AssertionError("the second request was not throttled")
        except lam.exceptions.TooManyRequestsException as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert (
                e.response["Reason"]
                == "ReservedFunctionConcurrentInvocationLimitExceeded"
            ), e.response
        assert json.loads(first.result()["Payload"].read())["output"] == "first\n"
    # Once the first is done, the next one runs.
    assert json.loads(invoke("single", "echo third")["Payload"].read())["output"] == (
        "third\n"
    )
    print(json.dumps({"elapsed": elapsed}))


def raw(method, path, body=b"", headers=None):
    url = urllib.parse.urlparse(ENDPOINT)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    out = (r.status, r.getheader("x-amzn-ErrorType"), r.read())
    conn.close()
    return out


def check_bad_input():
    invocations = "/2015-03-31/functions/echo/invocations"
    status, kind, body = raw("POST", invocations, b"{not json")
    assert (status, kind) == (400, "InvalidRequestContentException"), (status, body)
    assert json.loads(body)["Type"] == "User", body
    status, kind, _ = raw("GET", invocations)
    assert status == 405, status
    status, kind, _ = raw("DELETE", "/2015-03-31/functions/echo")
    assert status == 405, status
    # Over 6 MB (1 MB for an Event), refused from its Content-Length: the answer comes
    # before a byte of the body is sent.
    for size, headers in [
        (6 * 1024 * 1024 + 1, {}),
        (1024 * 1024 + 1, {"X-Amz-Invocation-Type": "Event"}),
    ]:
        url = urllib.parse.urlparse(ENDPOINT)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.putrequest("POST", invocations)
        conn.putheader("Content-Length", str(size))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        assert (r.status, r.getheader("x-amzn-ErrorType")) == (
            413,
            "RequestTooLargeException",
        ), (size, r.status)
        assert str(size) in json.loads(r.read())["message"]
        conn.close()
    # Within the limit for RequestResponse, too large for an Event.
    status, kind, _ = raw(
        "POST",
        invocations,
        json.dumps({"script": "x" * (1024 * 1024)}).encode(),
        {"X-Amz-Invocation-Type": "DryRun"},
    )
    assert status == 204, status
    # Path tricks never reach a file.
    for name in ["..%2F..%2Fetc", "%2e%2e", "a%00b", "echo%2Finvocations"]:
        status, kind, _ = raw("POST", f"/2015-03-31/functions/{name}/invocations", b"{}")
        assert status in (400, 404), (name, status)
    status, kind, _ = raw("POST", "/2015-03-31/functions/../../x/invocations", b"{}")
    assert status in (400, 404), status
    status, kind, _ = raw("POST", "/other", b"{}")
    assert status == 404, status
    print(json.dumps({"ok": True}))


globals()["check_" + sys.argv[2]]()
