"""The Python clients Argo users already have, unchanged, against `cox server`.

Usage: python3 tests/clients/test_clients.py PATH_TO_COX

Starts `cox server --no-sandbox` on a free loopback port with a fresh COX_HOME, then with
`hera` and with `argo-workflows` (both from PyPI) submits a workflow, waits for it and
reads its logs; follows a running workflow's logs and watches it with the SDK; then the
same round trips with a bearer token (`--auth-mode token`). Steps run as
host processes (`alpine` is `sh` on the host, see worker/src/images.rs).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

COX = None
TOKEN = "client-test-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cox server` on a free loopback port, stopped (SIGTERM) on exit."""

    def __init__(self, *extra):
        self.home = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, COX_HOME=self.home.name)
        self.log = open(os.path.join(self.home.name, "server.log"), "w+")
        self.process = subprocess.Popen(
            [COX, "server", "--addr", f"127.0.0.1:{self.port}", "--no-sandbox", *extra],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(
                    self.url + "/api/v1/version",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                urllib.request.urlopen(request, timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("cox server did not start:\n" + self.output())
                time.sleep(0.1)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.log.close()
        self.home.cleanup()
        return code


def hera_roundtrip(testcase, server, token=None):
    from hera.workflows import Container, Steps, Workflow, WorkflowsService

    service = WorkflowsService(host=server.url, token=token, verify_ssl=False, namespace="argo")
    with Workflow(generate_name="hera-", entrypoint="main", namespace="argo", workflows_service=service) as w:
        say = Container(name="say", image="alpine", command=["sh", "-c"], args=["echo hello from hera"])
        with Steps(name="main"):
            say()
    created = w.create()
    testcase.assertTrue(created.metadata.name.startswith("hera-"), created.metadata.name)
    finished = w.wait(poll_interval=1)
    testcase.assertEqual(finished.status.phase, "Succeeded", server.output())
    # hera's `workflow_logs` parses the answer as one bare LogEntry document; Argo Server
    # (and so cox) streams one `{"result": LogEntry}` per line, whatever the request says,
    # so hera's call gets this one-line log's line with `result` ignored: an empty entry
    # (README, "cox server"). The stream itself is read through hera's own session.
    entry = service.workflow_logs(created.metadata.name, namespace="argo")
    testcase.assertIsNone(entry.content, entry)
    headers = {"Authorization": service.token} if service.token else {}
    answer = service.session.get(
        f"{server.url}/api/v1/workflows/argo/{created.metadata.name}/log",
        params={"logOptions.container": "main"},
        headers=headers,
        timeout=30,
    )
    testcase.assertEqual(answer.status_code, 200, answer.text)
    lines = [json.loads(line)["result"] for line in answer.text.splitlines() if line]
    testcase.assertEqual([line["content"] for line in lines], ["hello from hera"])
    testcase.assertTrue(lines[0]["podName"], lines)


def shell_workflow(metadata, script):
    """A one-step workflow running `script` with `sh -c`."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "container": {"image": "alpine", "command": ["sh", "-c"], "args": [script]}}
            ],
        },
    }


def sdk_create(api, manifest):
    """Create through the SDK; the answer as a dict (the SDK's strict model checks are off)."""
    from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_create_request import (
        IoArgoprojWorkflowV1alpha1WorkflowCreateRequest,
    )

    return api.create_workflow(
        "argo",
        IoArgoprojWorkflowV1alpha1WorkflowCreateRequest(workflow=manifest, _check_type=False),
        _check_return_type=False,
    )


def argo_workflows_roundtrip(testcase, server, token=None):
    import argo_workflows
    from argo_workflows.api import workflow_service_api
    configuration = argo_workflows.Configuration(host=server.url)
    if token:
        configuration.api_key["BearerToken"] = token
        configuration.api_key_prefix["BearerToken"] = "Bearer"
    with argo_workflows.ApiClient(configuration) as client:
        if token:
            # The generated client sends the key under the name of its security scheme.
            client.default_headers["Authorization"] = f"Bearer {token}"
        api = workflow_service_api.WorkflowServiceApi(client)
        created = sdk_create(api, shell_workflow({"generateName": "sdk-"}, "echo one; echo two"))
        name = created["metadata"]["name"]
        testcase.assertTrue(name.startswith("sdk-"), name)
        deadline = time.monotonic() + 60
        while True:
            workflow = api.get_workflow("argo", name, _check_return_type=False)
            phase = workflow.get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed", "Error"):
                break
            testcase.assertLess(time.monotonic(), deadline, f"{name} still {phase}")
            time.sleep(0.5)
        testcase.assertEqual(phase, "Succeeded", server.output())
        # A streamed answer: read raw, one `{"result": LogEntry}` a line.
        response = api.workflow_logs("argo", name, log_options_container="main", _preload_content=False)
        lines = [json.loads(line)["result"] for line in response.data.decode().splitlines() if line]
        testcase.assertEqual([line["content"] for line in lines], ["one", "two"])
        testcase.assertEqual({line["podName"] for line in lines}, {lines[0]["podName"]})


def argo_workflows_follow_and_watch(testcase, server):
    """Logs followed while the step runs, and the watch stream, through the SDK."""
    import argo_workflows
    from argo_workflows.api import workflow_service_api
    gate = tempfile.TemporaryDirectory()
    release = os.path.join(gate.name, "release")
    script = f"echo started; while [ ! -e {release} ]; do sleep 0.05; done; echo released"
    with argo_workflows.ApiClient(argo_workflows.Configuration(host=server.url)) as client:
        api = workflow_service_api.WorkflowServiceApi(client)
        watch = api.watch_workflows(
            "argo", list_options_field_selector="metadata.name=gated", _preload_content=False
        )
        sdk_create(api, shell_workflow({"name": "gated"}, script))
        logs = api.workflow_logs(
            "argo", "gated", log_options_follow=True, _preload_content=False
        )
        # The first line comes while the step still waits for the release file.
        first = json.loads(logs.readline())["result"]
        testcase.assertEqual(first["content"], "started")
        running = api.get_workflow("argo", "gated", _check_return_type=False)
        testcase.assertEqual(running["status"]["phase"], "Running")
        open(release, "w").close()
        rest = [json.loads(line)["result"]["content"] for line in logs.read().decode().splitlines() if line]
        testcase.assertEqual(rest, ["released"])
        # The watch saw the workflow added, then followed it to its end.
        phases = []
        while "Succeeded" not in phases:
            line = watch.readline()
            testcase.assertTrue(line, f"the watch ended early: {phases}")
            event = json.loads(line)["result"]
            testcase.assertEqual(event["object"]["metadata"]["name"], "gated")
            phases.append(event["object"].get("status", {}).get("phase"))
        watch.release_conn()
    gate.cleanup()


class ClientsTest(unittest.TestCase):
    def test_hera_and_argo_workflows_without_auth(self):
        server = Server()
        try:
            hera_roundtrip(self, server)
            argo_workflows_roundtrip(self, server)
            argo_workflows_follow_and_watch(self, server)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_hera_and_argo_workflows_with_a_token(self):
        tokens = tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False)
        tokens.write(f"python {TOKEN}\n")
        tokens.close()
        server = Server("--auth-mode", "token", "--token-file", tokens.name)
        try:
            request = urllib.request.Request(server.url + "/api/v1/workflows/argo")
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            self.assertEqual(refused.exception.code, 401)
            hera_roundtrip(self, server, token=f"Bearer {TOKEN}")
            argo_workflows_roundtrip(self, server, token=TOKEN)
        finally:
            self.assertEqual(server.stop(), 0)
            os.unlink(tokens.name)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_clients.py PATH_TO_COX")
    COX = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
