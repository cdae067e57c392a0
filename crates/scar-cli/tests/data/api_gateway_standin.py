"""A small stand-in for API Gateway's data plane, in front of moto.

moto serves API Gateway's control plane (REST APIs, resources, methods, integrations,
stages) but not `execute-api` requests: this server stands in for API Gateway where moto
cannot, so that `scar --provider aws invoke` has an endpoint to call in the tests
(crates/scar-cli/tests/it/aws.rs).

Usage: api_gateway_standin.py MOTO_ENDPOINT REGION RECORD_FILE

It listens on a free loopback port and prints `{"listening": "http://127.0.0.1:PORT"}` as
its first line, then:

- forwards every request to moto unchanged (scar's `--endpoint-url` points here, so that
  the URLs scar computes for its APIs point here too), except
- `ANY /restapis/{api id}/scar/_user_request_/{path}` (LocalStack's shape of `execute-api`
  URLs, which scar gives its APIs with an endpoint override): the REST proxy event of that
  request (the fields crates/scar-local/src/gateway.rs's `proxy_event` sends) goes to the
  Lambda function behind the API's `{proxy+}` integration (its `AWS_PROXY` uri names the
  function), invoked on moto; the function's proxy response becomes the answer as API
  Gateway gives it (its status, headers and body as they are: a base64 body stays base64),
  and a function error or a payload that is not a proxy response is API Gateway's 502
  `{"message": "Internal server error"}`. `X-Amz-Invocation-Type: Event` invokes the
  function asynchronously and answers 202 at once.

Each such request is appended to RECORD_FILE as one JSON line: the event sent, the
function's ARN and the invocation type, for the test to read.
"""

import base64
import http.client
import http.server
import json
import sys
import threading
import urllib.parse
import uuid

import boto3

MOTO = urllib.parse.urlsplit(sys.argv[1])
REGION = sys.argv[2]
RECORD_FILE = sys.argv[3]
STAGE = "scar"
USER_REQUEST = "_user_request_"
# Headers that belong to one connection, not to the request: not forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
# Headers this server writes itself.
OWN_HEADERS = {"content-length", "date", "server"}
RECORD_LOCK = threading.Lock()


def client(service):
    return boto3.client(
        service,
        endpoint_url=sys.argv[1],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def route(path):
    """(api id, user path) of an `execute-api` path of stage `scar`, else None."""
    rest = path.removeprefix("/restapis/")
    if rest == path or "/" not in rest:
        return None
    api_id, rest = rest.split("/", 1)
    prefix = STAGE + "/" + USER_REQUEST
    if not rest.startswith(prefix):
        return None
    user = rest[len(prefix) :] or "/"
    return (api_id, user) if user.startswith("/") and api_id else None


def function_of(api_id):
    """The ARN of the function behind the API's `{proxy+}` integration, or None."""
    apigateway = client("apigateway")
    try:
        resources = apigateway.get_resources(restApiId=api_id)["items"]
    except apigateway.exceptions.NotFoundException:
        return None
    for resource in resources:
        if resource.get("path") != "/{proxy+}":
            continue
        integration = apigateway.get_integration(
            restApiId=api_id, resourceId=resource["id"], httpMethod="ANY"
        )
        uri = integration.get("uri", "")
        if integration.get("type") == "AWS_PROXY" and "/functions/" in uri:
            return uri.split("/functions/", 1)[1].removesuffix("/invocations")
    return None


def proxy_event(method, user_path, query, headers, api_id, account, request_id, body):
    """API Gateway's REST proxy event (the fields of gateway.rs's `proxy_event`)."""
    single, multi = {}, {}
    for name, value in headers.items():
        single[name] = value
        multi.setdefault(name, []).append(value)
    params, multi_params = {}, {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        params[k] = v
        multi_params.setdefault(k, []).append(v)
    if not body:
        body, encoded = None, False
    else:
        try:
            body, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(body).decode(), True
    proxy = user_path.lstrip("/")
    return {
        "resource": "/{proxy+}",
        "path": user_path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi,
        "queryStringParameters": params or None,
        "multiValueQueryStringParameters": multi_params or None,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "httpMethod": method,
            "path": "/" + STAGE + user_path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "resourcePath": "/{proxy+}",
            "stage": STAGE,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def proxy_response(payload):
    """The proxy response in a function's payload, or None."""
    try:
        response = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(response, dict):
        return None
    status = response.get("statusCode")
    if not isinstance(status, int) or not 100 <= status <= 599:
        return None
    headers = response.get("headers") or {}
    body = response.get("body") or ""
    if not isinstance(headers, dict) or not isinstance(body, str):
        return None
    return status, {str(k): str(v) for k, v in headers.items()}, body.encode()


def record(entry):
    with RECORD_LOCK, open(RECORD_FILE, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status, headers, body):
        self.send_response(status)
        length = str(len(body))
        for k, v in headers:
            if k.lower() == "content-length" and self.command == "HEAD":
                # No body follows, and its length is the object's: kept.
                length = v
            elif k.lower() not in HOP_BY_HOP | OWN_HEADERS:
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def own(self, status, message):
        body = json.dumps({"message": message}).encode()
        self.answer(status, [("Content-Type", "application/json")], body)

    def handle_any(self):
        body = self.body()
        split = urllib.parse.urlsplit(self.path)
        found = route(split.path)
        if found is None:
            self.forward(body)
        else:
            self.gateway(found, split.query, body)

    def forward(self, body):
        """The request to moto unchanged; moto's answer."""
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
        }
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(MOTO.hostname, MOTO.port, timeout=300)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.answer(answer.status, answer.getheaders(), data)
        finally:
            connection.close()

    def gateway(self, found, query, body):
        api_id, user_path = found
        function = function_of(api_id)
        if function is None:
            self.own(404, "Not Found")
            return
        request_id = str(uuid.uuid4())
        account = function.split(":")[4]
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
        }
        event = proxy_event(
            self.command, user_path, query, headers, api_id, account, request_id, body
        )
        asynchronous = self.headers.get("X-Amz-Invocation-Type") == "Event"
        invocation_type = "Event" if asynchronous else "RequestResponse"
        record({"event": event, "function": function, "invocation_type": invocation_type})
        invoked = client("lambda").invoke(
            FunctionName=function,
            InvocationType=invocation_type,
            Payload=json.dumps(event).encode(),
        )
        if asynchronous:
            self.own(202, "Request accepted")
            return
        payload = invoked["Payload"].read()
        response = None if "FunctionError" in invoked else proxy_response(payload)
        if response is None:
            self.own(502, "Internal server error")
            return
        status, headers, data = response
        headers = list(headers.items()) + [("x-amzn-RequestId", request_id)]
        self.answer(status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def log_message(self, format, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    print(json.dumps({"listening": f"http://127.0.0.1:{port}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
