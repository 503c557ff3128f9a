"""docs/CLUSTER.md and deploy/ hold what a user copies to a real cluster: every `unisweep` command in them parses
with our own parser and names a spec that loads, the launcher config passes Ray's own schema, both keep token
auth on every node, and the docs explain every check `unisweep doctor` can print. No cluster is started."""

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from sweeps.spec import load_spec
from unisweep.cli import make_parser

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "CLUSTER.md").read_text()
LAUNCHER = yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text())
RAYJOB = yaml.safe_load((ROOT / "deploy" / "kuberay-rayjob.yaml").read_text())
OPERATORS = {"&&", "||", ";", "|", "(", ")"}


def unisweep_commands(text: str) -> list[list[str]]:
    """The arguments of each `unisweep` command in shell text: after the word `unisweep`, up to an operator."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        for i, word in enumerate(words):
            if word == "unisweep":
                args = words[i + 1:]
                commands.append(args[:next((j for j, w in enumerate(args) if w in OPERATORS), len(args))])
    return commands


def parse(args: list[str]) -> argparse.Namespace:
    """`unisweep ARGS` as the command line parses it, each flag spelled in full (argparse takes a prefix too)."""
    parser = make_parser()
    try:
        parsed = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"`unisweep {shlex.join(args)}` does not parse")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args[0]]
    flags = {w.split("=")[0] for w in args if w.startswith("--")}
    assert flags <= set(sub._option_string_actions), f"`unisweep {shlex.join(args)}`: no such flag"
    return parsed


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def rayjob_pods() -> dict[str, dict]:
    cluster = RAYJOB["spec"]["rayClusterSpec"]
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    pods.update({g["groupName"]: g["template"]["spec"] for g in cluster["workerGroupSpecs"]})
    return pods


def test_every_unisweep_command_parses_and_names_a_spec_that_loads():
    doc = [cmd for block in bash_blocks(DOC) for cmd in unisweep_commands(block)]
    launcher = [cmd for key, value in LAUNCHER.items() if key.endswith("_commands")
                for cmd in unisweep_commands("\n".join(value))]
    rayjob = unisweep_commands(RAYJOB["spec"]["entrypoint"])
    assert {args[0] for args in doc} >= {"run", "resume", "doctor"} and len(rayjob) == 1  # the extraction finds them
    names = set()
    for args in doc + launcher + rayjob:
        parsed = parse(args)
        if getattr(parsed, "spec", None):
            assert (ROOT / parsed.spec).is_file(), parsed.spec
            names.add(load_spec(ROOT / parsed.spec).name)
    resumed = {parse(args).name for args in doc if args[0] == "resume"}
    assert resumed and resumed <= names  # `resume NAME` names a sweep the docs run


def test_the_spec_snippets_in_the_doc_load(tmp_path):
    """A ```yaml block that `extends` a spec (relative to sweeps/) is a spec a user can save there."""
    snippets = [s for s in re.findall(r"^```yaml\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL) if "extends:" in s]
    assert snippets
    for i, text in enumerate(snippets):
        path = tmp_path / f"spec{i}.yaml"
        path.write_text(re.sub(r"^extends: (\S+)", rf"extends: {ROOT}/sweeps/\1", text, flags=re.MULTILINE))
        load_spec(path)


def test_the_rayjob_keeps_token_auth_and_shared_storage_on_every_pod():
    assert (RAYJOB["apiVersion"], RAYJOB["kind"]) == ("ray.io/v1", "RayJob")
    spec = RAYJOB["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    env_vars = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env_vars["UNISWEEP_CACHE"].startswith("/shared/") and env_vars["MLFLOW_TRACKING_URI"].startswith("http")
    assert int(env_vars["RAY_JOB_STOP_WAIT_TIME_S"]) > 3  # room for the driver's SIGTERM handling
    assert parse(unisweep_commands(spec["entrypoint"])[0]).storage.startswith("/shared/")
    pods = rayjob_pods()
    assert len(pods) >= 2 and any("nvidia.com/gpu" in c["resources"]["limits"]
                                  for pod in pods.values() for c in pod["containers"])
    secrets = set()
    for name, pod in {**pods, "submitter": spec["submitterPodTemplate"]["spec"]}.items():
        for container in pod["containers"]:
            env = {e["name"]: e for e in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token", name
            secrets.add(env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"])
    assert len(secrets) == 1  # one token for the whole cluster
    for name, pod in pods.items():
        claims = {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        assert any(m["mountPath"] == "/shared" and m["name"] in claims
                   for c in pod["containers"] for m in c["volumeMounts"]), name


def test_the_launcher_config_passes_rays_schema_and_starts_every_node_with_token_auth():
    from ray.autoscaler._private.util import prepare_config, validate_config  # what `ray up` runs

    validate_config(prepare_config(LAUNCHER))
    assert LAUNCHER["provider"]["type"] == "local"
    starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in LAUNCHER[key]
              if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert "--head --port=6379 --dashboard-host=0.0.0.0" in starts[0] and "--address=$RAY_HEAD_IP:6379" in starts[1]
    assert not [c for key, value in LAUNCHER.items() if key.endswith("_commands") for c in value if "disabled" in c]
    assert "~/.ray/auth_token" in LAUNCHER["file_mounts"]
    assert any("/shared" in c for c in LAUNCHER["setup_commands"])


def test_versions_and_the_torch_pin_match_the_project():
    makefile, pyproject = (ROOT / "Makefile").read_text(), (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"(torch==[^"]+)"', makefile)[1]
    for text in (DOC, (ROOT / "deploy" / "ray-cluster.yaml").read_text(),
                 (ROOT / "deploy" / "kuberay-rayjob.yaml").read_text()):
        assert set(re.findall(r"torch==[\d.]+", text)) == {pin}
    for package in ("ray", "mlflow"):
        assert re.search(rf'"{package}(?:\[[^]]*\])?(>=[^"]+)"', pyproject)[1] in DOC


def test_the_doc_explains_every_doctor_check():
    source = (ROOT / "sweeps" / "doctor.py").read_text()
    names = set(re.findall(r'Check\("(\w+)"', source))
    names |= set(re.findall(r'"(\w+)": (?:cache|storage)\b', source))  # the folder checks, named by their key
    assert {"ray", "resources", "tracking", "reach", "cache", "storage"} <= names
    rows = set(re.findall(r"^\| `(\w+)` \|", DOC, re.MULTILINE))
    assert names <= rows, f"docs/CLUSTER.md has no table row for {sorted(names - rows)}"


def test_every_link_and_repository_path_in_the_doc_stays_inside_the_repository():
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)", DOC) if "://" not in t]
    targets += re.findall(r"`((?:deploy|docs|sweeps|tests)/[\w./-]+\.(?:yaml|md|py))`", DOC)
    assert targets
    for target in targets:
        base = ROOT / "docs" if target.startswith(".") else ROOT
        assert (base / target).resolve().is_relative_to(ROOT) and (base / target).exists(), target
    assert "../" not in DOC
