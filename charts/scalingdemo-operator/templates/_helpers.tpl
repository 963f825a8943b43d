{{/* Names and labels shared by every template. */}}

{{- define "scalingdemo-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release name, with the chart's name appended unless it already holds it. */}}
{{- define "scalingdemo-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "scalingdemo-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "scalingdemo-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Selects the operator's pod: stable across upgrades (a selector cannot change). */}}
{{- define "scalingdemo-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scalingdemo-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "scalingdemo-operator.labels" -}}
{{ include "scalingdemo-operator.selectorLabels" . }}
app.kubernetes.io/part-of: scalingdemo
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata.labels and metadata.annotations of every object. */}}
{{- define "scalingdemo-operator.metadata" -}}
labels:
  {{- include "scalingdemo-operator.labels" . | nindent 2 }}
{{- with .Values.annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The operator's permissions, read from files/rbac/clusterrole.yaml: the one list that the
kustomize install ships as its ClusterRole: "all" of them, in the file's order; "cluster",
those on cluster-scoped resources; "namespaced", the rest.
*/}}
{{- define "scalingdemo-operator.rules" -}}
{{- $clusterScoped := list "customresourcedefinitions" "namespaces" -}}
{{- $all := (.Files.Get "files/rbac/clusterrole.yaml" | fromYaml).rules -}}
{{- $rules := dict "all" $all "cluster" (list) "namespaced" (list) -}}
{{- range $all -}}
{{- $scope := "namespaced" -}}
{{- range .resources -}}
{{- if has . $clusterScoped -}}{{- $scope = "cluster" -}}{{- end -}}
{{- end -}}
{{- $_ := set $rules $scope (append (get $rules $scope) .) -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}
