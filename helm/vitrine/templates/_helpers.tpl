{{/* Names, labels and small derived values shared by every template. */}}

{{- define "vitrine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vitrine.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vitrine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vitrine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vitrine.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "vitrine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vitrine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vitrine.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest] of an image block ({repository, tag, digest}). */}}
{{- define "vitrine.image" -}}
{{- $ref := .repository }}
{{- if .tag }}{{ $ref = printf "%s:%s" $ref (toString .tag) }}{{ end }}
{{- if .digest }}{{ $ref = printf "%s@%s" $ref .digest }}{{ end }}
{{- $ref }}
{{- end }}

{{/* Every Triton model folder the release serves: shared steps, then each pipeline's. */}}
{{- define "vitrine.repositoryModels" -}}
{{- $names := list }}
{{- range .Values.sharedModels }}{{ $names = append $names . }}{{ end }}
{{- range .Values.models }}{{ range .repositoryModels }}{{ $names = append $names . }}{{ end }}{{ end }}
{{- $names | uniq | join " " }}
{{- end }}

{{- define "vitrine.pipelines" -}}
{{- $names := list }}
{{- range .Values.models }}{{ $names = append $names .pipeline }}{{ end }}
{{- $names | join " " }}
{{- end }}

{{/* Triton gets exitTimeoutSeconds after the preStop pause; the kubelet waits for both plus a margin. */}}
{{- define "vitrine.terminationGracePeriodSeconds" -}}
{{- $s := .Values.server.shutdown }}
{{- add $s.preStopSleepSeconds $s.exitTimeoutSeconds $s.killMarginSeconds }}
{{- end }}

{{- define "vitrine.grpcUrl" -}}
{{- printf "127.0.0.1:%d" (int .Values.server.ports.grpc) }}
{{- end }}

{{/* The hardening every container gets; values cannot weaken it. */}}
{{- define "vitrine.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "vitrine.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "vitrine.coreModels" -}}
{{- $names := list }}
{{- range .Values.models }}{{ $names = append $names .coreModel }}{{ end }}
{{- $names | join " " }}
{{- end }}

{{/* Labels of the `helm test` client pod; the NetworkPolicy lets it reach gRPC. */}}
{{- define "vitrine.testClientLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test-client
{{- end }}

{{/* resources, plus nvidia.com/gpu in requests and limits when gpu.enabled. */}}
{{- define "vitrine.resources" -}}
{{- $resources := deepCopy .Values.resources }}
{{- if .Values.gpu.enabled }}
{{- $gpu := dict "nvidia.com/gpu" (int .Values.gpu.count) }}
{{- $_ := set $resources "requests" (merge (default dict $resources.requests) $gpu) }}
{{- $_ = set $resources "limits" (merge (default dict $resources.limits) $gpu) }}
{{- end }}
{{- toYaml $resources }}
{{- end }}

{{- define "vitrine.nodeSelector" -}}
{{- $selector := deepCopy .Values.nodeSelector }}
{{- if .Values.gpu.enabled }}{{ $selector = merge $selector .Values.gpu.nodeSelector }}{{ end }}
{{- with $selector }}{{ toYaml . }}{{ end }}
{{- end }}

{{- define "vitrine.tolerations" -}}
{{- $tolerations := .Values.tolerations }}
{{- if .Values.gpu.enabled }}{{ $tolerations = concat .Values.gpu.tolerations $tolerations }}{{ end }}
{{- with $tolerations }}{{ toYaml . }}{{ end }}
{{- end }}

{{/* The pipeline readiness probe's timeout: the pipelines are probed one after another, each
within secondsPerPipeline, so it grows with the model count (plus a second to start). */}}
{{- define "vitrine.readinessTimeout" -}}
{{- $readiness := .Values.probes.readiness }}
{{- $timeout := add 1 (mul $readiness.pipelineCheck.secondsPerPipeline (len .Values.models)) }}
{{- if gt $timeout (int $readiness.periodSeconds) }}
{{- fail (printf "probes.readiness: %d models x %d s per pipeline + 1 = %d s exceeds periodSeconds %d; raise periodSeconds or serve fewer models" (len .Values.models) (int $readiness.pipelineCheck.secondsPerPipeline) $timeout (int $readiness.periodSeconds)) }}
{{- end }}
{{- $timeout }}
{{- end }}
