{{/* Names, labels and the connection settings every TurnForge pod shares. */}}

{{- define "turnforge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "turnforge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "turnforge.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "turnforge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The topics each service consumes (shared/contracts/flow.py). */}}
{{- define "turnforge.serviceTopics" -}}
tool-synth: [seeds]
schema-predictor: [toolsets.synthesized]
task-generator: [toolsets.ready, trajectories.seeded]
user-sim: [turns.user]
agent: [turns.agent]
sql-executor: [tool.calls, trajectories.accepted, trajectories.rejected, deadletter]
validator: [trajectories.complete]
{{- end -}}

{{/* Per release, so that releases sharing a broker neither read each other's topics nor join each other's
     consumer groups. The services name their groups after the topic prefix (Settings.consumer_group). */}}
{{- define "turnforge.topicPrefix" -}}
{{ .Values.kafka.topicPrefix | default (printf "%s." .Release.Name) }}
{{- end -}}

{{- define "turnforge.groupPrefix" -}}
turnforge.{{ include "turnforge.topicPrefix" . }}
{{- end -}}

{{- define "turnforge.kafkaBootstrap" -}}
{{- if .Values.kafka.bundled.enabled -}}
{{ include "turnforge.fullname" . }}-kafka-kafka-bootstrap:9092
{{- else -}}
{{ required "kafka.external.bootstrapServers is required when kafka.bundled.enabled is false" .Values.kafka.external.bootstrapServers }}
{{- end -}}
{{- end -}}

{{- define "turnforge.otlpEndpoint" -}}
{{- if .Values.jaeger.bundled.enabled -}}
http://{{ include "turnforge.fullname" . }}-jaeger:4318/v1/traces
{{- else -}}
{{ .Values.jaeger.external.otlpEndpoint }}
{{- end -}}
{{- end -}}

{{- define "turnforge.jaegerUiUrl" -}}
{{- if .Values.jaeger.uiUrl -}}
{{ .Values.jaeger.uiUrl }}
{{- else if .Values.jaeger.bundled.enabled -}}
http://127.0.0.1:16686
{{- else -}}
{{ .Values.jaeger.external.uiUrl }}
{{- end -}}
{{- end -}}

{{- define "turnforge.modelServerName" -}}
{{ include "turnforge.fullname" .root }}-vllm-{{ .name }}
{{- end -}}

{{/* The `llm:` section: each role points at the vLLM server that lists it (or the default one). */}}
{{- define "turnforge.llmConfig" -}}
{{- $root := . -}}
{{- if .Values.modelServers.enabled -}}
{{- $servers := .Values.modelServers.servers -}}
{{- $default := required "modelServers.defaultServer must name an entry of modelServers.servers" (get $servers .Values.modelServers.defaultServer) -}}
default:
  base_url: http://{{ include "turnforge.modelServerName" (dict "root" $root "name" .Values.modelServers.defaultServer) }}:8000/v1
  model: {{ $default.model | quote }}
  structured_output: json_schema
  tool_calling: native
  extra_body: {}
roles:
{{- range $name, $server := $servers }}
{{- range $role := $server.roles }}
  {{ $role }}:
    base_url: http://{{ include "turnforge.modelServerName" (dict "root" $root "name" $name) }}:8000/v1
    model: {{ $server.model | quote }}
    structured_output: json_schema
    tool_calling: native
    extra_body: {}
{{- end }}
{{- end }}
{{- else -}}
default:
  base_url: {{ required "externalModel.baseUrl is required when modelServers.enabled is false" .Values.externalModel.baseUrl | quote }}
  model: {{ required "externalModel.model is required when modelServers.enabled is false" .Values.externalModel.model | quote }}
  {{- /* How each kind of server takes a JSON schema and tool calls (values.yaml, externalModel.server). */}}
  {{- $presets := dict
    "vllm" (list "json_schema" "native")
    "openai" (list "json_schema" "native")
    "llama-cpp-python" (list "json_object_schema" "json_schema")
    "llama-server" (list "json_schema" "json_schema") }}
  {{- $preset := get $presets .Values.externalModel.server }}
  structured_output: {{ .Values.externalModel.structuredOutput | default (index $preset 0) }}
  tool_calling: {{ .Values.externalModel.toolCalling | default (index $preset 1) }}
  extra_body: {}
{{- end -}}
{{- end -}}

{{/* Environment every TurnForge pod gets: the config file, the DSN from its Secret, the model API key. */}}
{{- define "turnforge.commonEnv" -}}
- name: TURNFORGE_CONFIG
  value: /etc/turnforge/config.yaml
- name: TURNFORGE_POSTGRES__DSN
  valueFrom:
    secretKeyRef:
{{- if .Values.postgresql.bundled.enabled }}
      name: {{ include "turnforge.fullname" . }}-pg-app
      key: uri
{{- else if .Values.postgresql.external.existingSecret }}
      name: {{ .Values.postgresql.external.existingSecret }}
      key: {{ .Values.postgresql.external.existingSecretKey }}
{{- else }}
      name: {{ include "turnforge.fullname" . }}-postgres
      key: dsn
{{- end }}
{{- if and (not .Values.modelServers.enabled) .Values.externalModel.apiKeySecret }}
- name: TURNFORGE_LLM__DEFAULT__API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalModel.apiKeySecret }}
      key: api_key
{{- end }}
{{- end -}}

{{- define "turnforge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "turnforge.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Where a hook Job's pod may run: the Job's own nodeSelector/tolerations/affinity, else the services' defaults
     (a cluster whose TurnForge nodes are tainted or labelled needs the Jobs there too). */}}
{{- define "turnforge.jobScheduling" -}}
{{- $defaults := .root.Values.serviceDefaults -}}
{{- with .job.nodeSelector | default $defaults.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .job.tolerations | default $defaults.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .job.affinity | default $defaults.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
