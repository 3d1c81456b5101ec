{{/* Names, labels and the operator's RBAC rules, shared by every template. */}}

{{- define "ladder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The object-name prefix: <release>-<chart>, or just <release> when it already holds the chart name. */}}
{{- define "ladder.fullname" -}}
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

{{- define "ladder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ladder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ladder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "ladder.labels" -}}
helm.sh/chart: {{ include "ladder.chart" . }}
{{ include "ladder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ladder
{{- end }}

{{- define "ladder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ladder.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: repository[:tag][@digest], the tag defaulting
to the chart's appVersion. Call with (dict "image" .Values.x.image "root" $).
*/}}
{{- define "ladder.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- $ref := printf "%s:%s" .image.repository $tag }}
{{- if .image.digest }}
{{- if not (hasPrefix "sha256:" .image.digest) }}
{{- fail (printf "image digest %q of %s must start with sha256:" .image.digest .image.repository) }}
{{- end }}
{{- $ref = printf "%s@%s" $ref .image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* The namespaces watched in namespaced mode: watch.namespaces, or the release namespace. */}}
{{- define "ladder.watchNamespaces" -}}
{{- if .Values.watch.namespaces }}
{{- toJson (uniq .Values.watch.namespaces) }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/*
The operator's permissions, the same in a Role (namespaced mode) and in the ClusterRole. Each verb
is one the operator's code uses (operator/ladder_operator/{controller,kube,runner}.py):
- scalingexperiments get/list/watch: the watch and the initial listing; patch: its state
  annotation and, for `checkpoint.retention: delete`, its finalizer (never the spec).
- scalingexperiments/status patch: status by server-side apply; get: each experiment's own Role
  grants its pods get and patch on the status, and Kubernetes lets the operator create that Role
  only with permissions it holds itself (no `escalate` or `bind` verbs here).
- jobsets get/list/watch/create/patch/delete: one per size, suspend/resume by patch, an evaluation
  JobSet replaced by delete and create.
- configmaps, serviceaccounts, roles, rolebindings create/patch: the per-experiment objects,
  written by server-side apply (which creates them the first time); owner references delete them.
  No get or list: the operator never reads them back.
- kueue workloads get/list/watch: queued or admitted; patch: `spec.active` on suspend/resume.
- events create: Events on transitions (core/v1; kopf's own event posting is off).
No Secrets, no pods or pods/exec, no namespaces, no wildcards. Reading CRDs (kopf watches them to
learn which resources exist) is cluster-scoped, so it is its own ClusterRole in both modes
(rbac/crd-reader.yaml).
*/}}
{{- define "ladder.operatorRules" -}}
- apiGroups: ["ladder.dev"]
  resources: ["scalingexperiments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ladder.dev"]
  resources: ["scalingexperiments/status"]
  verbs: ["get", "patch"]
- apiGroups: ["jobset.x-k8s.io"]
  resources: ["jobsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["configmaps", "serviceaccounts"]
  verbs: ["create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["create", "patch"]
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* What the operator fills in for experiments that leave a setting unset, and the site's
allowlists it enforces (mounted as JSON). */}}
{{- define "ladder.operatorDefaults" -}}
{{- $d := dict
  "images" (dict
    "trainer" (include "ladder.image" (dict "image" .Values.images.trainer "root" .))
    "evaluator" (include "ladder.image" (dict "image" .Values.images.evaluator "root" .))
    "pullPolicy" .Values.images.pullPolicy)
  "queue" .Values.defaults.queue
  "priorityClass" (default nil .Values.defaults.priorityClass)
  "outputUri" .Values.defaults.outputUri
  "costEstimate" .Values.defaults.costEstimate
  "workloads" (dict
    "gcpServiceAccount" (default nil .Values.workloads.serviceAccount.gcpServiceAccount)
    "serviceAccountAnnotations" .Values.workloads.serviceAccount.annotations
    "nodeSelector" .Values.workloads.nodeSelector
    "tolerations" .Values.workloads.tolerations)
  "policy" .Values.policy
}}
{{- toPrettyJson $d }}
{{- end }}
