#!/usr/bin/python3
"""mvctld + osd integration test (tests/integration/api).

Starts mvctld on 127.0.0.1 (a free port) with a temporary database, imports the inventory of a
3-host rack (rack3.json, in the form the agent sends), exercises every endpoint of
docs/api/internal.yaml and validates each live response against that schema, runs D2.3's
example commands through osd, checks every 422 rule of §3.4.2 and §3.5.2.1 through osd, and
restarts mvctld to check that nothing is lost. Cleans up its temporary directory and processes.
"""
import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

try:
    import jsonschema
    import yaml
except ImportError as e:
    print(f"skip: needs python3-jsonschema and python3-yaml ({e})")
    sys.exit(77)

SRC = os.environ.get("MV_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
BUILD = os.environ.get("MV_BUILD_DIR", os.path.join(SRC, "build"))
MVCTLD = os.path.join(BUILD, "bin", "mvctld")
OSD = os.path.join(BUILD, "bin", "osd")
RACK = os.path.join(SRC, "tests", "integration", "api", "rack3.json")
SPEC = yaml.safe_load(open(os.path.join(SRC, "docs", "api", "internal.yaml")))
PASSWORD = "hapi-it-secret"
CONF = None

failures = []
covered = set()


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


# ---------------------------------------------------------------- schema validation

def template_of(path):
    """The spec path template that matches a concrete path."""
    path = path.split("?")[0]
    for tmpl in SPEC["paths"]:
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", tmpl) + "$"
        if re.match(rx, path):
            # prefer literal segments over parameters (e.g. /nodes/{id}/numa over {member})
            return tmpl
    return None


def best_template(path):
    path = path.split("?")[0]
    best = None
    for tmpl in SPEC["paths"]:
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", tmpl) + "$"
        if re.match(rx, path):
            score = len(re.sub(r"\{[^}]+\}", "", tmpl))
            if best is None or score > best[0]:
                best = (score, tmpl)
    return best[1] if best else None


def resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
        node = SPEC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def validate(method, path, status, body):
    tmpl = best_template(path)
    if not check(tmpl is not None, f"{method} {path}: path not in the spec"):
        return
    op = SPEC["paths"][tmpl].get(method.lower())
    if op is None and status == 405:  # a method the path does not have: the generic error
        op = {"responses": {}}
    if not check(op is not None, f"{method} {tmpl}: method not in the spec"):
        return
    resp = op["responses"].get(str(status))
    if resp is None and status == 401:
        resp = {"$ref": "#/components/responses/Unauthorized"}
    if resp is None and status in (404, 405, 413):
        resp = {"description": "generic", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if not check(resp is not None, f"{method} {tmpl}: status {status} not in the spec"):
        return
    covered.add((tmpl, method.upper(), status))
    resp = resolve(resp)
    content = resp.get("content")
    if content is None:
        check(body is None, f"{method} {path} {status}: the spec says no body, got {body!r}")
        return
    schema = content["application/json"]["schema"]
    resolver = jsonschema.RefResolver.from_schema(SPEC)
    try:
        jsonschema.Draft202012Validator(schema, resolver=resolver).validate(body)
    except jsonschema.ValidationError as e:
        check(False, f"{method} {path} {status}: response does not match the schema: {e.message} at {list(e.absolute_path)}")


# ---------------------------------------------------------------- HTTP

class Api:
    def __init__(self, port, scheme="http", ctx=None):
        self.base = f"{scheme}://127.0.0.1:{port}"
        self.ctx = ctx
        self.auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

    def raw(self, method, path, data=None, auth=True, headers=None):
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if auth:
            req.add_header("Authorization", auth if isinstance(auth, str) else self.auth)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def call(self, method, path, body=None, expect=None, auth=True):
        data = json.dumps(body).encode() if body is not None and not isinstance(body, (bytes, str)) else (body.encode() if isinstance(body, str) else body)
        status, raw, headers = self.raw(method, path, data, auth)
        parsed = json.loads(raw) if raw else None
        validate(method, path, status, parsed)
        if expect is not None:
            check(status == expect, f"{method} {path}: status {status}, wanted {expect}: {raw[:300]!r}")
        return status, parsed


def codes(body):
    return {e["code"] for e in (body or {}).get("errors", [])}


# ---------------------------------------------------------------- processes

class Controller:
    def __init__(self, tmp, conf):
        self.tmp, self.conf, self.proc, self.port = tmp, conf, None, None

    def start(self):
        self.log = open(os.path.join(self.tmp, "mvctld.log"), "a")
        self.proc = subprocess.Popen([MVCTLD, "-c", self.conf, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"port (\d+)", line)
        if not m:
            raise RuntimeError(f"mvctld did not start: {line!r}; see {self.log.name}")
        self.port = int(m.group(1))
        return self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            check(rc == 0, f"mvctld exit status on SIGTERM: {rc}")
        self.proc = None


def osd(env, *args, ok=True):
    r = subprocess.run([OSD, *args], env=env, capture_output=True, text=True, timeout=60)
    if ok is not None:
        check((r.returncode == 0) == ok, f"osd {' '.join(args)}: exit {r.returncode}, stderr {r.stderr.strip()!r}")
    return r


def osd_json(env, *args):
    r = osd(env, *args, "--json")
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        check(False, f"osd {' '.join(args)} --json: not JSON: {r.stdout[:200]!r}")
        return None


# ---------------------------------------------------------------- the test

def endpoints(api):
    """Every endpoint and status of the spec, with schema validation of each response."""
    api.call("GET", "/api/health", expect=200, auth=False)
    api.call("GET", "/api/datastores", expect=401, auth=False)
    api.call("GET", "/api/datastores", expect=401, auth="Basic " + base64.b64encode(b"admin:wrong").decode())
    api.call("GET", "/api/nodes", expect=200)
    _, nodes = api.call("GET", "/api/nodes", expect=200)
    check(len(nodes) == 3, f"3 nodes imported, got {len(nodes)}")
    api.call("GET", "/api/nodes/54424488", expect=200)
    api.call("GET", "/api/nodes/nope", expect=404)
    api.call("GET", "/api/nodes/54424488/numa", expect=200)
    api.call("GET", "/api/nodes/nope/numa", expect=404)
    api.call("GET", "/api/nodes/5442448a/cores", expect=200)
    api.call("GET", "/api/nodes/nope/cores", expect=404)
    api.call("GET", "/api/nodes/5442448c/disks", expect=200)
    api.call("GET", "/api/nodes/nope/disks", expect=404)
    _, cores = api.call("GET", "/api/cores", expect=200)
    check(len(cores) == 24, f"24 cores, got {len(cores)}")
    api.call("GET", "/api/cores?node_id=54424488&free=true", expect=200)
    api.call("GET", "/api/cores?free=perhaps", expect=400)
    api.call("GET", "/api/cores/54424488_4", expect=200)
    api.call("GET", "/api/cores/nope", expect=404)
    _, disks = api.call("GET", "/api/disks", expect=200)
    check(len(disks) == 9, f"9 disks, got {len(disks)}")
    api.call("GET", "/api/disks?free=maybe", expect=400)
    api.call("GET", "/api/disks/3584916917", expect=200)
    api.call("GET", "/api/disks/nope", expect=404)

    # datastores
    api.call("POST", "/api/datastores", "{not json", expect=400)
    api.call("POST", "/api/datastores", b"x" * (1024 * 1024 + 10), expect=413)
    api.call("POST", "/api/datastores", {"name": "", "disks": [], "replicas": 0}, expect=422)
    _, ds = api.call("POST", "/api/datastores", {"name": "api-ds", "disks": ["4012774501", "4012774502"], "replicas": 2,
                                                  "repair_volume_policy": {"trigger": "periodic", "period_seconds": 600}}, expect=202)
    dsid = ds["id"]
    api.call("GET", f"/api/datastores/{dsid}", expect=200)
    api.call("GET", "/api/datastores/nope", expect=404)
    api.call("PUT", f"/api/datastores/{dsid}", {"overcommit_disk": "50"}, expect=200)
    api.call("PUT", f"/api/datastores/{dsid}", {"replicas": 1}, expect=422)
    api.call("PUT", f"/api/datastores/{dsid}", "[", expect=400)
    api.call("PUT", "/api/datastores/nope", {"name": "x"}, expect=404)
    api.call("POST", f"/api/datastores/{dsid}/disks", {"disks": ["4012774503"]}, expect=200)
    api.call("POST", f"/api/datastores/{dsid}/disks", {"disks": ["nope"]}, expect=422)
    api.call("POST", "/api/datastores/nope/disks", {"disks": ["4012774503"]}, expect=404)
    api.call("DELETE", f"/api/datastores/{dsid}/disks/4012774503", expect=200)
    api.call("DELETE", f"/api/datastores/{dsid}/disks/4012774502", expect=422)  # below replicas
    api.call("DELETE", f"/api/datastores/{dsid}/disks/nope", expect=404)
    api.call("PATCH", "/api/datastores", {}, expect=405)

    # networks
    _, n1 = api.call("POST", "/api/networks", {"name": "api-net", "cidr": "192.168.10.0/24", "dhcp_type": "static",
                                                "ip_start": "192.168.10.10", "ip_end": "192.168.10.99", "gateway": "192.168.10.1"}, expect=202)
    api.call("POST", "/api/networks", {"name": "bad", "vlan_tag": 7}, expect=422)
    api.call("POST", "/api/networks", "nul", expect=400)
    api.call("GET", "/api/networks", expect=200)
    api.call("GET", f"/api/networks/{n1['id']}", expect=200)
    api.call("GET", "/api/networks/9999", expect=404)
    api.call("PUT", f"/api/networks/{n1['id']}", {"name": "api-net2"}, expect=200)
    api.call("PUT", f"/api/networks/{n1['id']}", {"is_vlan": True}, expect=422)
    api.call("PUT", "/api/networks/9999", {"name": "x"}, expect=404)

    # resource groups
    rg_body = {"name": "api-rg", "cores": ["5442448c_0"], "datastores": [dsid], "network_ids": [n1["id"]], "cpu_overcommit": 2}
    _, rg = api.call("POST", "/api/resource_groups", rg_body, expect=202)
    api.call("POST", "/api/resource_groups", dict(rg_body, cpu_overcommit=9), expect=422)
    api.call("POST", "/api/resource_groups", "{", expect=400)
    rid = rg["id"]
    volumes_instances(api, n1["id"])
    api.call("GET", "/api/resource_groups", expect=200)
    api.call("GET", f"/api/resource_groups/{rid}", expect=200)
    api.call("GET", "/api/resource_groups/9999", expect=404)
    api.call("PUT", f"/api/resource_groups/{rid}", {"description": "edited", "fault_tolerance": {"is_enabled": True, "unit": "chassis"}}, expect=200)
    api.call("PUT", f"/api/resource_groups/{rid}", {"is_cpu_pinning_enabled": True}, expect=422)
    api.call("PUT", "/api/resource_groups/9999", {"name": "x"}, expect=404)
    api.call("POST", f"/api/resource_groups/{rid}/cores", {"cores": ["5442448c_1"]}, expect=200)
    api.call("POST", f"/api/resource_groups/{rid}/cores", {"cores": ["nope_1"]}, expect=422)
    api.call("POST", "/api/resource_groups/9999/cores", {"cores": ["5442448c_1"]}, expect=404)
    api.call("DELETE", f"/api/resource_groups/{rid}/cores/5442448c_1", expect=200)
    api.call("DELETE", f"/api/resource_groups/{rid}/cores/5442448c_0", expect=422)  # the last one
    api.call("DELETE", f"/api/resource_groups/{rid}/cores/5442448c_7", expect=404)
    api.call("DELETE", f"/api/datastores/{dsid}", expect=422)  # in use
    _, err = api.call("DELETE", "/api/nodes/5442448c", expect=422)  # its core is in the group
    check(4002 in codes(err), f"forgetting a node in use: {err}")
    api.call("DELETE", f"/api/networks/{n1['id']}", expect=422)  # in use
    api.call("DELETE", f"/api/resource_groups/{rid}", expect=204)
    api.call("DELETE", "/api/resource_groups/9999", expect=404)
    api.call("DELETE", f"/api/networks/{n1['id']}", expect=204)
    api.call("DELETE", "/api/networks/9999", expect=404)
    api.call("DELETE", f"/api/datastores/{dsid}", expect=202)
    api.call("DELETE", f"/api/datastores/{dsid}", expect=404)
    # nodes: a static node nothing uses can be forgotten, and comes back with its inventory
    api.call("DELETE", "/api/nodes/5442448c", expect=204)
    api.call("GET", "/api/nodes/5442448c", expect=404)
    api.call("DELETE", "/api/nodes/nope", expect=404)
    subprocess.run([MVCTLD, "-c", CONF, "--import-inventory", RACK], check=True, capture_output=True)
    _, nodes = api.call("GET", "/api/nodes", expect=200)
    check(len(nodes) == 3 and len(api.call("GET", "/api/disks")[1]) == 9, "re-imported node is back")


def volumes_instances(api, net_id):
    """Volumes and instances without a wire layer (bookkeeping only): every endpoint and status."""
    _, ds = api.call("POST", "/api/datastores", {"name": "vol-ds", "disks": ["3584916917"], "replicas": 1}, expect=202)
    _, g = api.call("POST", "/api/resource_groups", {"name": "vm-rg", "cores": ["54424488_0", "54424488_1"],
                                                     "datastores": [ds["id"]], "network_ids": [net_id], "cpu_overcommit": 1}, expect=202)
    api.call("GET", "/api/volumes", expect=200)
    api.call("POST", "/api/volumes", {"name": "", "size": 0}, expect=422)
    api.call("POST", "/api/volumes", "{", expect=400)
    _, v = api.call("POST", "/api/volumes", {"name": "api-vol", "size": 10, "datastore_id": ds["id"]}, expect=201)
    check(v and v["status"] == "available" and v["disks"] == ["3584916917"], f"volume: {v}")
    api.call("GET", "/api/volumes/api-vol", expect=200)
    api.call("GET", f"/api/volumes/{v['id']}", expect=200)
    api.call("GET", "/api/volumes/nope", expect=404)
    api.call("PUT", "/api/volumes/api-vol", {"size": 20}, expect=200)
    api.call("PUT", "/api/volumes/api-vol", {"size": 5}, expect=422)
    api.call("PUT", "/api/volumes/api-vol", "[", expect=400)
    api.call("PUT", "/api/volumes/nope", {"size": 30}, expect=404)
    api.call("PUT", "/api/volumes/api-vol/clone", {"name": "api-clone"}, expect=201)
    api.call("PUT", "/api/volumes/api-vol/clone", {"name": "api-clone"}, expect=422)
    api.call("PUT", "/api/volumes/api-vol/clone", "[", expect=400)
    api.call("PUT", "/api/volumes/nope/clone", {"name": "x"}, expect=404)
    api.call("GET", "/api/instances", expect=200)
    body = {"name": "api-vm", "resource_group_id": g["id"], "vcpus": 2, "ram": 256, "payload": "/var/lib/mvkvm/guest.elf",
            "volumes": [{"name": "api-vol", "delete_on_termination": True}], "networks": [{"network_id": net_id}]}
    _, i = api.call("POST", "/api/instances", body, expect=201)
    check(i and i["node"] == "54424488" and i["cpuset"] == "0-1" and i["volumes"][0]["status"] == "in-use", f"instance: {i}")
    _, e = api.call("POST", "/api/instances", dict(body, name="api-vm2", vcpus=1), expect=422)
    check(6009 in codes(e), f"attached volume accepted twice: {e}")
    _, e = api.call("POST", "/api/instances", dict(body, name="big", volumes=[]), expect=422)
    check(6020 in codes(e), f"cores over capacity accepted: {e}")
    api.call("POST", "/api/instances", "{", expect=400)
    api.call("GET", "/api/instances/api-vm", expect=200)
    api.call("GET", "/api/instances/nope", expect=404)
    api.call("GET", "/api/instances/api-vm/info", expect=200)
    api.call("GET", "/api/instances/nope/info", expect=404)
    for a in ("stop", "start", "pause", "unpause"):
        api.call("PUT", "/api/instances/api-vm/action", {"action": a}, expect=202)
    api.call("PUT", "/api/instances/api-vm/action", {"action": "fly"}, expect=422)
    api.call("PUT", "/api/instances/api-vm/action", "{", expect=400)
    api.call("PUT", "/api/instances/nope/action", {"action": "stop"}, expect=404)
    api.call("DELETE", "/api/volumes/api-vol", expect=422)  # attached
    api.call("DELETE", "/api/instances/api-vm", expect=204)
    api.call("DELETE", "/api/instances/api-vm", expect=404)
    api.call("GET", "/api/volumes/api-vol", expect=404)  # deleted with its instance
    api.call("DELETE", "/api/volumes/api-clone", expect=204)
    api.call("DELETE", "/api/volumes/api-clone", expect=404)
    api.call("DELETE", f"/api/resource_groups/{g['id']}", expect=204)
    api.call("DELETE", f"/api/datastores/{ds['id']}", expect=202)


def d23_examples(env):
    """D2.3's example commands, with ids from the imported inventory."""
    r = osd(env, "create_datastore", "--name=test", "--disks=3584916917,3283879690", "--replicas=1", "--thick=1")
    check("test" in r.stdout, "create_datastore prints the new datastore")
    r = osd(env, "get_datastores")
    check(re.search(r"^ID\s+NAME", r.stdout, re.M) and " test " in r.stdout, f"get_datastores table: {r.stdout!r}")
    dss = osd_json(env, "get_datastores", "--filter=id,name,is_thin")
    check(dss == [{"id": dss[0]["id"], "name": "test", "is_thin": False}], f"--filter projection: {dss}")
    dsid = dss[0]["id"]
    nets = []
    for name, cidr in (("public", "10.0.0.0/24"), ("private", "10.1.0.0/24")):
        n = osd_json(env, "create_network", f"--name={name}", f"--cidr={cidr}")
        nets.append(n["id"])
    r = osd(env, "create_group", "--name=super", "--core_ids=54424488_4,54424488_5",
            f"--network_ids={nets[0]},{nets[1]}", f"--datastores={dsid}")
    check("super" in r.stdout, f"create_group output: {r.stdout!r}")
    groups = osd_json(env, "get_groups")
    check(len(groups) == 1 and groups[0]["cores"] == ["54424488_4", "54424488_5"], f"get_groups: {groups}")
    gid = str(groups[0]["id"])
    # edits, members, --if/--if-not
    g = osd_json(env, "edit_group", f"--id={gid}", "--cpu_overcommit=4", "--enable_ft", "--ft_unit=blade", "--ft_max_failures=1")
    check(g and g["cpu_overcommit"] == 4 and g["fault_tolerance"]["unit"] == "blade", f"edit_group: {g}")
    g = osd_json(env, "add_group_cores", f"--id={gid}", "--core_ids=54424488_6,54424488_7")
    check(g and len(g["cores"]) == 4, f"add_group_cores: {g}")
    g = osd_json(env, "remove_group_cores", f"--id={gid}", "--core_ids=54424488_7")
    check(g and len(g["cores"]) == 3, f"remove_group_cores: {g}")
    d = osd_json(env, "edit_datastore", f"--id={dsid}", "--overcommit=20", "--trigger_repair=periodic", "--periodic_repair_sec=3600", "--num_of_repairs=2")
    check(d and d["overcommit_disk"] == "20" and d["repair_volume_policy"]["period_seconds"] == 3600, f"edit_datastore: {d}")
    d = osd_json(env, "add_datastore_disks", f"--id={dsid}", "--disks=3584916918")
    check(d and len(d["disks"]) == 3, f"add_datastore_disks: {d}")
    d = osd_json(env, "remove_datastore_disks", f"--id={dsid}", "--disks=3584916918")
    check(d and len(d["disks"]) == 2, f"remove_datastore_disks: {d}")
    free = osd_json(env, "get_disks", "--if-not=datastore")
    check(free is not None and len(free) == 7, f"--if-not=datastore: {free and len(free)}")
    used = osd_json(env, "get_disks", f"--if=datastore={dsid}", "--filter=id")
    check(sorted(u["id"] for u in used) == ["3283879690", "3584916917"], f"--if=datastore=X: {used}")
    r = osd(env, "get_cores", "--node_id=54424488", "--if=resource_group_id", "--filter=id,resource_group_id")
    check(len(r.stdout.strip().splitlines()) == 4, f"get_cores --if: {r.stdout!r}")
    r = osd(env, "get_nodes")
    check(r.stdout.count("rack1") == 3, f"get_nodes: {r.stdout!r}")
    osd(env, "get_numa", "--id=5442448a")
    osd(env, "get_node", "--id=5442448a")
    osd(env, "get_disk", "--id=3584916917")
    osd(env, "get_core", "--id=54424488_4")
    osd(env, "get_network", f"--id={nets[0]}")
    osd(env, "get_group", f"--id={gid}")
    osd(env, "get_datastore", f"--id={dsid}")
    osd(env, "edit_network", f"--id={nets[1]}", "--name=private2")
    r = osd(env, "create_group", "--help")
    check("--enable_cpu_pinning" in r.stdout and "--ft_unit" in r.stdout, "create_group --help lists the options")
    return dsid, nets, gid


def rules_422(env, dsid, nets):
    """Every 422 rule of §3.5.2.1 and §3.4.2, through osd: non-zero exit, the server's message."""
    def expect(args, code, text):
        r = osd(env, *args, ok=False)
        check(f"[{code}]" in r.stderr and text in r.stderr and "error 422" in r.stderr,
              f"osd {' '.join(args)}: wanted 422 [{code}] '{text}', got {r.stderr.strip()!r}")
    ds = ["create_datastore", "--disks=4012774501", "--replicas=1"]
    expect(ds + ["--name="], 1001, "The name cannot be empty")
    expect(ds + ["--name=" + "x" * 32], 1002, "31 characters")
    expect(ds + ["--name=OPENSTACK_DS"], 1003, "OPENSTACK_DS")
    for ch in "=,?\"'\\":
        expect(["create_datastore", "--disks=4012774501", "--replicas=1", f"--name=a{ch}b"], 1004, "characters")
    expect(["create_datastore", "--name=r0", "--disks=4012774501", "--replicas=0"], 1005, "replicas is 0 or lower")
    expect(["create_datastore", "--name=r0", "--disks=4012774501", "--replicas=-1"], 1005, "replicas is 0 or lower")
    expect(ds + ["--name=oc", "--overcommit=101"], 1006, "over 100")
    expect(["create_datastore", "--name=nd", "--disks=", "--replicas=1"], 1007, "empty")
    expect(["create_datastore", "--name=nd", "--disks=4012774501,9999999999", "--replicas=1"], 1008, "non-existent")
    rg = ["create_group", "--core_ids=5442448a_0", f"--network_ids={nets[0]}", f"--datastores={dsid}"]
    expect(["create_group", "--name=", "--core_ids=5442448a_0", f"--network_ids={nets[0]}", f"--datastores={dsid}"], 2001, "name cannot be empty")
    expect(["create_group", "--name=g", f"--network_ids={nets[0]}", f"--datastores={dsid}"], 2002, "No core ids")
    expect(["create_group", "--name=g", "--core_ids=5442448a_0", f"--network_ids={nets[0]}"], 2003, "No datastore ids")
    expect(["create_group", "--name=g", "--core_ids=5442448a_0", f"--datastores={dsid}"], 2004, "No network ids")
    expect(["create_group", "--name=g", "--core_ids=5442448a_99", f"--network_ids={nets[0]}", f"--datastores={dsid}"], 2005, "Unknown core, datastore or network ids")
    expect(["create_group", "--name=g", "--core_ids=5442448a_0", "--network_ids=9999", f"--datastores={dsid}"], 2005, "Unknown core, datastore or network ids")
    expect(["create_group", "--name=g", "--core_ids=5442448a_0", f"--network_ids={nets[0]}", "--datastores=zzzzzzzzzzzzzz"], 2005, "Unknown core, datastore or network ids")
    expect(rg + ["--name=g", "--cpu_overcommit=0"], 2006, "less than 1")
    expect(rg + ["--name=g", "--cpu_overcommit=9"], 2007, "greater than 8")
    expect(rg + ["--name=g", "--cpu_overcommit=2", "--enable_cpu_pinning"], 2008, "CPU pinning is enabled")
    # nothing was created by the refused requests
    check(len(osd_json(env, "get_datastores")) == 1, "refused datastores were not created")
    check(len(osd_json(env, "get_groups")) == 1, "refused groups were not created")
    # transport and CLI errors are non-zero too
    r = osd(env, "get_datastore", "--id=nope", ok=False)
    check("error 404" in r.stderr, f"404 through osd: {r.stderr!r}")
    r = osd(dict(env, OSD_PASSWORD="wrong"), "get_datastores", ok=False)
    check("error 401" in r.stderr, f"401 through osd: {r.stderr!r}")
    osd(env, "no_such_command", ok=False)
    osd(env, "get_datastores", "--bogus=1", ok=False)


def tls_check(tmp, hash_line):
    if shutil.which("openssl") is None:
        print("note: openssl missing, HTTPS not checked")
        return
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    conf = os.path.join(tmp, "tls.conf")
    with open(conf, "w") as f:
        f.write(f"[mvctld]\nlisten=127.0.0.1\ndb={tmp}/tls.db\nadmin_user=admin\nadmin_password_hash={hash_line}\n"
                f"tls_cert={cert}\ntls_key={key}\n")
    c = Controller(tmp, conf)
    port = c.start()
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        api = Api(port, "https", ctx)
        api.call("GET", "/api/health", expect=200, auth=False)
        api.call("GET", "/api/datastores", expect=200)
        env = dict(os.environ, HOME=tmp, OSD_URL=f"https://127.0.0.1:{port}", OSD_USER="admin", OSD_PASSWORD=PASSWORD)
        with open(os.path.join(tmp, ".config", "osd.conf"), "w") as f:
            f.write(f"[osd]\ncacert={cert}\ninsecure=true\n")
        osd(env, "get_datastores")
    finally:
        c.stop()


def main():
    for exe in (MVCTLD, OSD):
        if not os.access(exe, os.X_OK):
            print(f"skip: {exe} is not built")
            return 77
    tmp = tempfile.mkdtemp(prefix="hapi-it-")
    controller = None
    try:
        os.makedirs(os.path.join(tmp, ".config"))
        h = subprocess.run([MVCTLD, "--hash-password"], input=PASSWORD + "\n", capture_output=True, text=True, check=True).stdout.strip()
        check(h.startswith("$argon2"), "--hash-password prints an argon2 hash")
        global CONF
        conf = CONF = os.path.join(tmp, "mvctld.conf")
        with open(conf, "w") as f:
            f.write(f"[mvctld]\nlisten=127.0.0.1\ndb={tmp}/mvctld.db\nadmin_user=admin\nadmin_password_hash={h}\nlog_level=info\n")
        controller = Controller(tmp, conf)
        port = controller.start()
        api = Api(port)
        # static inventory imported while the daemon runs: the daemon sees it at once
        _, before = api.call("GET", "/api/nodes", expect=200)
        check(before == [], "no nodes before the import")
        subprocess.run([MVCTLD, "-c", conf, "--import-inventory", RACK], check=True, capture_output=True)
        r = subprocess.run([MVCTLD, "-c", conf, "--import-inventory", "/nonexistent"], capture_output=True, text=True)
        check(r.returncode != 0 and "nonexistent" in r.stderr, "a missing inventory file is an error")

        endpoints(api)
        env = dict(os.environ, HOME=tmp, OSD_URL=f"http://127.0.0.1:{port}", OSD_USER="admin", OSD_PASSWORD=PASSWORD)
        dsid, nets, gid = d23_examples(env)
        rules_422(env, dsid, nets)

        # restart: nothing lost
        snapshot = {p: api.call("GET", p, expect=200)[1] for p in ("/api/datastores", "/api/resource_groups", "/api/networks", "/api/disks", "/api/cores")}
        nodes_before = [dict(n, last_seen=0) for n in api.call("GET", "/api/nodes")[1]]
        controller.stop()
        port = controller.start()
        api = Api(port)
        for p, want in snapshot.items():
            check(api.call("GET", p, expect=200)[1] == want, f"{p} changed across a restart")
        check([dict(n, last_seen=0) for n in api.call("GET", "/api/nodes")[1]] == nodes_before, "nodes changed across a restart")

        # delete what the examples made (D2.3: delete commands)
        env["OSD_URL"] = f"http://127.0.0.1:{port}"
        osd(env, "delete_datastore", f"--id={dsid}", ok=False)  # still in the group
        osd(env, "delete_group", f"--id={gid}")
        osd(env, "delete_datastore", f"--id={dsid}")
        for n in nets:
            osd(env, "delete_network", f"--id={n}")
        check(osd_json(env, "get_datastores") == [] and osd_json(env, "get_groups") == [], "everything deleted")
        controller.stop()
        tls_check(tmp, h)

        # every operation of the spec was exercised
        for tmpl, ops in SPEC["paths"].items():
            for method in ops:
                if method in ("get", "put", "post", "delete") and not any(c[0] == tmpl and c[1] == method.upper() for c in covered):
                    check(False, f"{method.upper()} {tmpl} was never exercised")
    finally:
        if controller:
            controller.stop()
        if failures and os.path.exists(os.path.join(tmp, "mvctld.log")):
            print("---- mvctld log (tail)")
            print("".join(open(os.path.join(tmp, "mvctld.log")).readlines()[-30:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(covered)} (path, method, status) combinations validated against docs/api/internal.yaml")
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
