{{/* Chart name, overridable. */}}
{{- define "ffpool-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full resource name: "<release>-<chart>" unless the release name already holds it. */}}
{{- define "ffpool-operator.fullname" -}}
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

{{- define "ffpool-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change for the life of a release: the Deployment selector. */}}
{{- define "ffpool-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ffpool-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ffpool-operator.labels" -}}
helm.sh/chart: {{ include "ffpool-operator.chart" . }}
{{ include "ffpool-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: ffpool
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ffpool-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ffpool-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "ffpool-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The namespaces watched in "namespace" scope, as a JSON list (default: the release's). */}}
{{- define "ffpool-operator.watchNamespaces" -}}
{{- if .Values.rbac.namespaces }}
{{- toJson (uniq .Values.rbac.namespaces) }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/*
Rules for the objects a pool owns, in the namespaces the operator serves. Each rule is one API
call family the operator makes (ffpool_operator/kube/client.py and kopf itself); the chart's RBAC test
derives the same list from the operator's code and fails on any difference.
*/}}
{{- define "ffpool-operator.poolRules" -}}
# kopf watches pools and patches its finalizer and bookkeeping annotations.
- apiGroups: ["ffpool.dev"]
  resources: ["ffmpegpools"]
  verbs: ["list", "watch", "patch"]
# Conditions, queue depth and scaling state.
- apiGroups: ["ffpool.dev"]
  resources: ["ffmpegpools/status"]
  verbs: ["patch"]
# Owner references with blockOwnerDeletion need this where the OwnerReferencesPermissionEnforcement
# admission plugin is on (e.g. OpenShift).
- apiGroups: ["ffpool.dev"]
  resources: ["ffmpegpools/finalizers"]
  verbs: ["update"]
# Owned children: server-side apply, a PATCH that the API server also authorizes as `create`
# when it creates the object. Every child is read first (one that is not the pool's is left
# alone) and by the repair timer; Deployments also for the worker count and status; an Ingress
# and the NetworkPolicies are deleted when the spec disables them.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses", "networkpolicies"]
  verbs: ["get", "create", "patch", "delete"]
# PodDisruptionBudgets of servers and workers: applied like the other children, deleted when the
# spec disables one.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
# The pool's PodMonitor (spec.monitoring.podMonitor), when the Prometheus Operator is installed:
# read first, applied when enabled, deleted when disabled (docs/monitoring.md).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "create", "patch", "delete"]
# Busy-aware scale-down: find idle worker pods and set their pod-deletion-cost.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
# Secrets, by name only (no list/watch, no patch, no delete): the pool's RabbitMQ Secret (management
# API credentials), its tokens Secret (checked to exist, for the pool's condition) and its signing
# key Secret (created once if absent, never rewritten).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
# Scaling decisions and warnings as Kubernetes Events (kopf.info / kopf.warn).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* kopf's cluster observation: new or changed CRDs (always), namespaces (namespace scope). */}}
{{- define "ffpool-operator.observerRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if eq .Values.rbac.scope "namespace" }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}
