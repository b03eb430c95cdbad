"""The Helm chart renders what a cluster needs and configures what the code reads; its schema rejects bad values.

Uses the helm binary scripts/go-tool.sh builds once (about 1.5 minutes) and caches in ~/.cache/turnforge/bin;
skipped only where there is neither that binary nor a Go toolchain to build it.
"""
from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from services.agent.service import Agent
from services.schema_predictor.service import SchemaPredictor
from services.sql_executor.service import SqlExecutor
from services.task_generator.service import TaskGenerator
from services.tool_synth.service import ToolSynth
from services.user_sim.service import UserSimulator
from services.validator.service import Validator
from shared.cli.main import seeds_from_file
from shared.ops import cluster
from shared.runtime.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "turnforge"
STAGES = (ToolSynth, SchemaPredictor, TaskGenerator, UserSimulator, Agent, SqlExecutor, Validator)


@lru_cache(maxsize=1)
def helm_binary() -> str:
    build = subprocess.run([str(ROOT / "scripts" / "go-tool.sh"), "helm"], capture_output=True, text=True, timeout=1200)
    if build.returncode == 3:
        pytest.skip("helm is not built and there is no Go toolchain to build it")
    assert build.returncode == 0, build.stderr
    return build.stdout.strip()


def helm_template(*values_files: Path, set_values: tuple[str, ...] = (), release: str = "tf",
                  kube_version: str | None = "1.33.4") -> subprocess.CompletedProcess:
    argv = [helm_binary(), "template", release, str(CHART), "--namespace", "turnforge"]
    if kube_version:
        argv += ["--kube-version", kube_version]
    for f in values_files:
        argv += ["-f", str(f)]
    for s in set_values:
        argv += ["--set", s]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def render(*values_files: Path, set_values: tuple[str, ...] = (), release: str = "tf") -> list[dict]:
    result = helm_template(*values_files, set_values=set_values, release=release)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def gpus(doc: dict) -> int:
    return sum(int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) for c in containers(doc))


@pytest.fixture(scope="module")
def defaults() -> list[dict]:
    return render()


def test_defaults_render_the_services_a_gpu_model_server_and_both_jobs(defaults):
    deployments = of_kind(defaults, "Deployment")
    services = {d["metadata"]["labels"].get("turnforge.io/service") for d in deployments} - {None}
    assert services == set(cluster.SERVICE_TOPICS)  # one Deployment per service, all seven
    for d in deployments:
        if "turnforge.io/service" in d["metadata"]["labels"]:
            [c] = containers(d)
            assert c["args"] == ["service", d["metadata"]["labels"]["turnforge.io/service"].replace("-", "_")]
            assert "exec" in c["livenessProbe"] and "heartbeat" in " ".join(c["livenessProbe"]["exec"]["command"])

    [vllm] = [d for d in deployments if "turnforge.io/model-server" in d["metadata"]["labels"]]
    [server] = containers(vllm)
    assert server["image"].startswith("vllm/vllm-openai:") and gpus(vllm) == 1
    assert server["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "--tensor-parallel-size=1" in server["args"]
    assert {"name": "model-cache", "mountPath": "/models"} in server["volumeMounts"]
    assert vllm["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"

    jobs = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in of_kind(defaults, "Job")}
    assert set(jobs) == {"init", "seed"}
    topic_job, seed_job = jobs["init"], jobs["seed"]
    assert "post-install" in topic_job["metadata"]["annotations"]["helm.sh/hook"]
    assert containers(topic_job)[0]["args"][:2] == ["cluster", "init"]
    assert containers(seed_job)[0]["args"][:2] == ["produce-seed", "/etc/turnforge-seeds/seeds.yaml"]
    # The seed Job runs after the topic Job.
    weight = lambda job: int(job["metadata"]["annotations"]["helm.sh/hook-weight"])  # noqa: E731
    assert weight(seed_job) > weight(topic_job)
    # Bundled dependencies as operator resources.
    assert {d["kind"] for d in defaults} >= {"Kafka", "KafkaNodePool", "Cluster"}


def test_rendered_config_is_what_the_services_read(defaults, tmp_path):
    [config_map] = [d for d in of_kind(defaults, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "tf-turnforge-kafka-kafka-bootstrap:9092"
    assert settings.kafka.partitions == 8 and settings.kafka.replication_factor == 1
    model_service = next(d for d in of_kind(defaults, "Service") if "vllm" in d["metadata"]["name"])
    url = f"http://{model_service['metadata']['name']}:{model_service['spec']['ports'][0]['port']}/v1"
    assert settings.llm.for_role("judge").base_url == url and settings.llm.default.base_url == url
    assert settings.llm.for_role("agent").structured_output == "json_schema"
    assert settings.llm.for_role("agent").tool_calling == "native"
    assert settings.tracing.otlp_endpoint == "http://tf-turnforge-jaeger:4318/v1/traces"
    assert settings.service.heartbeat_file == "/tmp/turnforge/heartbeat"
    # Every TURNFORGE_ variable a pod gets names a real setting.
    for doc in of_kind(defaults, "Deployment") + of_kind(defaults, "Job"):
        for c in containers(doc):
            for env in c.get("env", []):
                if env["name"].startswith("TURNFORGE_") and env["name"] != "TURNFORGE_CONFIG":
                    section, _, name = env["name"].removeprefix("TURNFORGE_").lower().partition("__")
                    assert name in type(getattr(Settings(), section)).model_fields, env["name"]


def test_schema_rejects_malformed_values(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "services": {"agnet": {"replicas": 2}},                       # no such service
        "kafka": {"partitions": 0},                                  # below the minimum
        "modelServers": {"servers": {"main": {"tensorParallelSize": "two"}}},
        "postgresql": {"external": {"dsn": "mysql://db/turnforge"}},
    }))
    result = helm_template(bad)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    for where in ("/services", "/kafka/partitions", "/modelServers/servers/main/tensorParallelSize",
                  "/postgresql/external/dsn"):
        assert where in result.stderr, where


def test_external_kafka_and_postgresql_with_lag_autoscaling():
    docs = render(CHART / "ci" / "external-values.yaml")
    assert not {"Kafka", "KafkaNodePool", "Cluster"} & {d["kind"] for d in docs}
    assert not [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-jaeger")]
    objects = {d["metadata"]["labels"]["turnforge.io/service"]: d for d in of_kind(docs, "ScaledObject")}
    assert set(objects) == set(cluster.SERVICE_TOPICS)
    # maxReplicas 10, but a service never gets more replicas than its busiest topic has partitions.
    assert objects["agent"]["spec"]["maxReplicaCount"] == 10             # turns.agent: 12 partitions
    assert objects["validator"]["spec"]["maxReplicaCount"] == 6          # default: 6 partitions
    # Planning scales with trajectories.seeded (12 partitions), not with toolsets.ready (6): one per seed.
    assert objects["task-generator"]["spec"]["maxReplicaCount"] == 10
    sql = objects["sql-executor"]["spec"]["triggers"]
    assert [t["metadata"]["topic"] for t in sql] == [f"tf.{t}" for t in cluster.SERVICE_TOPICS["sql-executor"]]
    assert {t["metadata"]["consumerGroup"] for t in sql} == {"turnforge.tf.sql-executor"}  # the release's own
    assert sql[0]["metadata"]["bootstrapServers"] == "kafka-0.kafka.data:9092,kafka-1.kafka.data:9092"
    # The topic Job and the services read the same partition counts and replication factor.
    [config_map] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    kafka = yaml.safe_load(config_map["data"]["config.yaml"])["kafka"]
    assert kafka["partitions"] == 6 and kafka["replication_factor"] == 3
    assert kafka["topic_partitions"] == {"trajectories.seeded": 12, "turns.user": 12, "turns.agent": 12,
                                         "tool.calls": 12}
    agent = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-agent"))
    assert "replicas" not in agent["spec"]  # KEDA owns the replica count
    dsn = next(e for e in containers(agent)[0]["env"] if e["name"] == "TURNFORGE_POSTGRES__DSN")
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "turnforge-postgres", "key": "dsn"}


def test_gpu_model_servers_with_tensor_parallelism():
    docs = render(CHART / "ci" / "gpu-tp2-values.yaml")
    servers = {d["metadata"]["labels"]["turnforge.io/model-server"]: d for d in of_kind(docs, "Deployment")
               if "turnforge.io/model-server" in d["metadata"]["labels"]}
    assert set(servers) == {"main", "judge"}
    judge = servers["judge"]
    assert gpus(judge) == 2 and "--tensor-parallel-size=2" in containers(judge)[0]["args"]
    assert judge["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    assert judge["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    [config_map] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    llm = yaml.safe_load(config_map["data"]["config.yaml"])["llm"]
    assert llm["roles"]["judge"]["base_url"] == "http://tf-turnforge-vllm-judge:8000/v1"
    assert llm["roles"]["judge"]["model"] == "Qwen/Qwen3-32B"
    assert llm["roles"]["agent"]["base_url"] == "http://tf-turnforge-vllm-main:8000/v1"


def test_the_charts_topic_table_matches_the_services_stages():
    """The chart, `cluster status` and the services must agree on who consumes which topic."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    table = re.search(r'define "turnforge.serviceTopics" -}}\n(.*?)\n{{- end', helpers, re.S).group(1)
    assert {k: tuple(v) for k, v in yaml.safe_load(table).items()} == cluster.SERVICE_TOPICS
    consumed = {stage.name: tuple(topic for topic, *_ in stage.consumed()) for stage in STAGES}
    assert consumed == cluster.SERVICE_TOPICS


# -- What installing on a real API server found (issue 14); `make cluster-test` checks the same on a cluster --------
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "Job")]


def hook_annotations(doc: dict) -> dict:
    return {k: v for k, v in doc["metadata"].get("annotations", {}).items() if k.startswith("helm.sh/hook")}


def kafka_settings(docs: list[dict]) -> dict:
    [config_map] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    return yaml.safe_load(config_map["data"]["config.yaml"])["kafka"]


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_two_releases_in_one_namespace_share_no_name_topic_or_consumer_group(values):
    """Finding 1 (a fixed KafkaNodePool name) and finding 8 (a second release's seeds went to the first release's
    consumers: same topics, same groups on one broker)."""
    first, second = render(values, release="tf"), render(values, release="tf2")
    names = lambda docs: {(d["kind"], d["metadata"]["name"]) for d in docs}  # noqa: E731
    assert not names(first) & names(second)
    if any(d["kind"] == "KafkaNodePool" for d in first):
        [pool] = of_kind(first, "KafkaNodePool")
        assert pool["metadata"]["name"].startswith("tf-")
    assert "topicPrefix" not in values.read_text()  # one explicit prefix for two releases shares topics on purpose
    assert kafka_settings(first)["topic_prefix"] != kafka_settings(second)["topic_prefix"]
    groups = [Settings(kafka=kafka_settings(docs)).consumer_group("agent") for docs in (first, second)]
    assert groups[0] != groups[1]


def test_the_autoscaler_watches_the_groups_the_services_consume_in():
    docs = render(CHART / "ci" / "default-values.yaml", set_values=("autoscaling.enabled=true",))
    settings = Settings(kafka=kafka_settings(docs))
    triggers = [(d["metadata"]["labels"]["turnforge.io/service"], t["metadata"])
                for d in of_kind(docs, "ScaledObject") for t in d["spec"]["triggers"]]
    assert len({service for service, _ in triggers}) == 7
    for service, trigger in triggers:
        assert trigger["consumerGroup"] == settings.consumer_group(service)
        assert trigger["topic"].startswith(settings.kafka.topic_prefix)


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_uninstall_leaves_no_hook_behind(values):
    """Finding 2: hooks are not release resources, so `helm uninstall` deletes only what Helm deletes itself. Every
    hook is deleted once it succeeded; a failed Job expires; the seeds ConfigMap is a release resource."""
    docs = render(values)
    for doc in docs:
        hooks = hook_annotations(doc)
        if hooks:
            assert "hook-succeeded" in hooks["helm.sh/hook-delete-policy"], doc["metadata"]["name"]
            assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"], doc["metadata"]["name"]
            assert doc["kind"] == "Job" and doc["spec"]["ttlSecondsAfterFinished"] > 0
    seeds = [d for d in of_kind(docs, "ConfigMap") if "-seeds-" in d["metadata"]["name"]]
    assert seeds and not hook_annotations(seeds[0])
    # What Helm keeps on uninstall: nothing by default (the model cache only when asked).
    kept = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"]
    assert not kept
    kept = render(values, set_values=("modelServers.modelCache.keepOnUninstall=true",))
    assert [d["kind"] for d in kept if d["metadata"].get("annotations", {}).get("helm.sh/resource-policy")] \
        in ([], ["PersistentVolumeClaim"] * len(of_kind(kept, "PersistentVolumeClaim")))


def test_hook_jobs_take_scheduling_of_their_own_or_the_services():
    """Finding 3: a cluster whose TurnForge nodes are tainted or labelled needs the Jobs scheduled there too."""
    toleration = {"key": "turnforge", "operator": "Exists", "effect": "NoSchedule"}
    docs = render(set_values=("serviceDefaults.nodeSelector.pool=turnforge",
                              "serviceDefaults.tolerations[0].key=turnforge",
                              "serviceDefaults.tolerations[0].operator=Exists",
                              "serviceDefaults.tolerations[0].effect=NoSchedule",
                              "seedJob.nodeSelector.pool=seeding",
                              "initJob.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                              ".nodeSelectorTerms[0].matchExpressions[0].key=zone",
                              "initJob.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                              ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists"))
    jobs = {d["metadata"]["labels"]["app.kubernetes.io/component"]: pod_spec(d) for d in of_kind(docs, "Job")}
    assert jobs["init"]["nodeSelector"] == {"pool": "turnforge"} and jobs["init"]["tolerations"] == [toleration]
    assert "nodeAffinity" in jobs["init"]["affinity"]
    assert jobs["seed"]["nodeSelector"] == {"pool": "seeding"} and jobs["seed"]["tolerations"] == [toleration]


def duration_s(text: str) -> int:
    """A Go duration as Helm's --timeout takes it (30m, 1h30m, 900s)."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", text))


def test_the_readme_install_waits_longer_than_the_chart_does():
    """Finding 4: Helm's default 5 minutes was shorter than the topic Job's retries and vLLM's startup probe."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    [vllm] = [d for d in of_kind(render(), "Deployment") if "turnforge.io/model-server" in d["metadata"]["labels"]]
    probe = containers(vllm)[0]["startupProbe"]
    startup_s = probe["periodSeconds"] * probe["failureThreshold"]
    assert startup_s >= values["modelServers"]["startupTimeoutS"]
    readme = (ROOT / "README.md").read_text()
    installs = re.findall(r"^helm install [^\n]*(?:\\\n[^\n]*)*", readme, re.M)
    assert installs, "the README shows no helm install"
    for command in installs:
        timeout = re.search(r"--timeout[ =](\S+)", command)
        assert timeout and "--wait" in command, command
        assert duration_s(timeout.group(1)) > max(startup_s, values["initJob"]["waitS"]), command


def test_a_model_server_update_keeps_the_old_pod_until_the_new_one_is_ready():
    """Finding 5: with Recreate, a new pod the API server rejects (a missing RuntimeClass) left no model server."""
    for values in VALUE_SETS:
        for d in of_kind(render(values), "Deployment"):
            if "turnforge.io/model-server" in d["metadata"]["labels"]:
                assert d["spec"]["strategy"] == {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    [vllm] = [d for d in of_kind(render(set_values=("modelServers.strategy.type=Recreate",
                                                    "modelServers.strategy.rollingUpdate=null")), "Deployment")
              if "turnforge.io/model-server" in d["metadata"]["labels"]]
    assert vllm["spec"]["strategy"] == {"type": "Recreate"}


def restricted_violations(doc: dict) -> list[str]:
    """Pod Security Standards, "restricted" profile (the checks of Kubernetes' PodSecurity admission, v1.33)."""
    spec, name, problems = pod_spec(doc), doc["metadata"]["name"], []
    pod_ctx = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{name}: {key}")
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    for volume in spec.get("volumes", []):
        if not set(volume) - {"name"} <= allowed_volumes:
            problems.append(f"{name}: volume {volume['name']}")
    for c in spec.get("initContainers", []) + spec["containers"]:
        ctx, where = c.get("securityContext", {}), f"{name}/{c['name']}"
        if ctx.get("privileged"):
            problems.append(f"{where}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: capabilities must drop ALL")
        if set(ctx.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities")
        if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot must be true")
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            problems.append(f"{where}: runs as root")
        seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile must be RuntimeDefault")
    return problems


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_every_pod_meets_pod_security_restricted(values):
    """Finding 6: the bundled Jaeger and the vLLM servers failed "restricted"; the services passed."""
    problems = [p for doc in workloads(render(values)) for p in restricted_violations(doc)]
    assert not problems


def test_template_needs_no_kube_version():
    """Finding 7: a Helm built without its release flags assumed Kubernetes v1.20 and refused the chart."""
    result = helm_template(kube_version=None)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("server", "structured", "tools"), [
    ("vllm", "json_schema", "native"), ("openai", "json_schema", "native"),
    ("llama-cpp-python", "json_object_schema", "json_schema"), ("llama-server", "json_schema", "json_schema")])
def test_an_external_endpoint_gets_the_settings_its_server_takes(server, structured, tools):
    """Finding 8: the chart's default json_schema answered HTTP 500 from llama-cpp-python's server."""
    docs = render(set_values=("modelServers.enabled=false", "externalModel.baseUrl=http://model:8000/v1",
                              "externalModel.model=m", f"externalModel.server={server}"))
    [config_map] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    llm = yaml.safe_load(config_map["data"]["config.yaml"])["llm"]["default"]
    assert (llm["structured_output"], llm["tool_calling"]) == (structured, tools)
    docs = render(set_values=("modelServers.enabled=false", "externalModel.baseUrl=http://model:8000/v1",
                              "externalModel.model=m", "externalModel.server=llama-cpp-python",
                              "externalModel.structuredOutput=json_schema"))
    [config_map] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    assert yaml.safe_load(config_map["data"]["config.yaml"])["llm"]["default"]["structured_output"] == "json_schema"


def test_the_cluster_tests_real_node_release_renders_settings_and_seeds_that_run(tmp_path):
    """make cluster-test runs this release for real; here it is held to what its services and seed Job read."""
    docs = render(ROOT / "e2e-tests/cluster/real-node-values.yaml", set_values=(
        "kafka.external.bootstrapServers=10.0.0.5:29092", "postgresql.external.dsn=postgresql://p@10.0.0.5:25432/tf",
        "externalModel.baseUrl=http://10.0.0.5:28080/v1", "externalModel.model=qwen2.5-coder-1.5b-instruct"))
    assert not [d for d in docs if d["kind"] in ("Kafka", "Cluster") or "vllm" in d["metadata"]["name"]]
    by_name = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    (tmp_path / "config.yaml").write_text(by_name["tf-turnforge-config"]["data"]["config.yaml"])
    settings = load_settings(tmp_path / "config.yaml")
    assert settings.kafka.bootstrap_servers == "10.0.0.5:29092" and not settings.kafka.transactions
    assert settings.llm.default.base_url == "http://10.0.0.5:28080/v1"
    assert (settings.llm.default.structured_output, settings.llm.default.tool_calling) == (
        "json_object_schema", "json_schema")  # what llama-cpp-python takes
    assert settings.llm.default.timeout_s == 600
    [seeds_map] = [d for name, d in by_name.items() if "-seeds-" in name]
    (tmp_path / "seeds.yaml").write_text(seeds_map["data"]["seeds.yaml"])
    [seed] = seeds_from_file(str(tmp_path / "seeds.yaml"), settings, "tf-test")
    assert (seed.domain, seed.settings.num_trajectories) == ("telecom", 2)
    for job in of_kind(docs, "Job") + of_kind(docs, "Deployment"):
        assert pod_spec(job)["nodeSelector"] == {"kubernetes.io/hostname": "tf-real-0"}, job["metadata"]["name"]
