{{/*
Names, labels and images.
*/}}
{{- define "airlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "airlock.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "airlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airlock
{{- end -}}

{{/* Selector labels of one component: airlock, envoy or redis. */}}
{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "airlock.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "airlock.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest. */}}
{{- define "airlock.imageRef" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (toString (default .default .image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "airlock.image" -}}
{{- include "airlock.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{- define "airlock.envoyImage" -}}
{{- include "airlock.imageRef" (dict "image" .Values.envoy.image "default" "") -}}
{{- end -}}

{{/* In-cluster DNS names. */}}
{{- define "airlock.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "airlock.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* The headless Service of airlock's gRPC ports (envoy.mode gateway). */}}
{{- define "airlock.grpcHost" -}}
{{- printf "%s-grpc.%s.svc.%s" (include "airlock.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "airlock.redisHost" -}}
{{- printf "%s-redis.%s.svc.%s" (include "airlock.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/*
Fixed ports and paths inside the pods. airlock.yaml names them; the
Deployments mount and expose them.
*/}}
{{- define "airlock.port.authz" -}}9001{{- end -}}
{{- define "airlock.port.extproc" -}}9002{{- end -}}
{{- define "airlock.port.sds" -}}9003{{- end -}}
{{- define "airlock.port.http" -}}8080{{- end -}}

{{/*
A Go duration ("20s", "1m30s", "500ms", "0") in milliseconds; anything
else fails, naming the value. Takes (dict "key" KEY "value" VALUE).
*/}}
{{- define "airlock.durationMS" -}}
{{- $s := toString .value | trim -}}
{{- if not (regexMatch "^(0|([0-9]+(\\.[0-9]+)?(h|ms|m|s))+)$" $s) -}}
{{- fail (printf "%s: %q is not a duration such as 20s, 1m30s or 500ms" .key $s) -}}
{{- end -}}
{{- $ms := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(h|ms|m|s)" $s -1 -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" -}}
{{- if eq $unit "h" -}}{{- $ms = addf $ms (mulf $n 3600000) -}}
{{- else if eq $unit "m" -}}{{- $ms = addf $ms (mulf $n 60000) -}}
{{- else if eq $unit "s" -}}{{- $ms = addf $ms (mulf $n 1000) -}}
{{- else -}}{{- $ms = addf $ms $n -}}
{{- end -}}
{{- end -}}
{{- $ms -}}
{{- end -}}

{{/*
Envoy's ext_authz timeout: approvals.hold + authz.timeout + 1s, so that a
held Check answers before the gateway gives up on it (airlock's own
envoy.ExtAuthzTimeout).
*/}}
{{- define "airlock.extAuthzTimeout" -}}
{{- $approvals := .Values.config.approvals | default dict -}}
{{- $authz := .Values.config.authz | default dict -}}
{{- $hold := include "airlock.durationMS" (dict "key" "config.approvals.hold" "value" (dig "hold" "0" $approvals)) -}}
{{- $timeout := include "airlock.durationMS" (dict "key" "config.authz.timeout" "value" (dig "timeout" "1s" $authz)) -}}
{{- printf "%gs" (divf (addf $hold $timeout 1000) 1000) -}}
{{- end -}}

{{/* authz.max_body_bytes: the request body ext_authz sends to airlock. */}}
{{- define "airlock.maxBodyBytes" -}}
{{- $authz := .Values.config.authz | default dict -}}
{{- int64 (dig "max_body_bytes" 1048576 $authz) -}}
{{- end -}}

{{/*
"true" when anyone can obtain a token from the issuer (airlock's
identity.PublicIssuer): accounts.google.com, token.actions.githubusercontent.com,
gitlab.com, and multi-tenant issuers.
*/}}
{{- define "airlock.publicIssuer" -}}
{{- $iss := lower (toString .) -}}
{{- if eq $iss "accounts.google.com" -}}
true
{{- else -}}
{{- $u := urlParse $iss -}}
{{- if or (has $u.hostname (list "accounts.google.com" "token.actions.githubusercontent.com" "gitlab.com")) (contains "multitenant" $iss) (contains "multi-tenant" $iss) -}}
true
{{- else -}}
{{- range splitList "/" $u.path -}}
{{- if has . (list "common" "organizations" "consumers") -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Everything that would start a replica unable to work safely stops the
rendering here, naming the value to set.
*/}}
{{- define "airlock.validate" -}}
{{- $v := .Values -}}
{{- $mode := $v.envoy.mode -}}
{{- if not (has $mode (list "sidecar" "gateway" "istio")) -}}
{{- fail (printf "envoy.mode: %q; want sidecar, gateway or istio" $mode) -}}
{{- end -}}
{{- $c := $v.config | default dict -}}
{{- range $key := list "listen" "envoy" "sds" "credentials" -}}
{{- if hasKey $c $key -}}
{{- fail (printf "config.%s: the chart sets it (from envoy.mode, sds and credentials); remove it from config" $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey ($c.approvals | default dict) "store" -}}
{{- fail "config.approvals.store: the chart sets it from redis.url or redis.bundled; remove it from config" -}}
{{- end -}}
{{- if hasKey ($c.policies | default dict) "paths" -}}
{{- fail "config.policies.paths: the chart mounts the policies at /etc/airlock/policies (policies.files or policies.existingConfigMap); remove it from config" -}}
{{- end -}}
{{- if hasKey ($c.recorder | default dict) "spool" -}}
{{- fail "config.recorder.spool: the chart keeps the spool at /var/lib/airlock/spool (spool.sizeLimit); remove it from config" -}}
{{- end -}}
{{- $identity := $c.identity | default dict -}}
{{- if $identity.dev -}}
{{- fail "config.identity.dev: the dev token issuer is for local trials (make run, docker compose), never a cluster; list your issuers in config.identity.issuers" -}}
{{- end -}}
{{- if not $identity.issuers -}}
{{- fail "config.identity.issuers: list at least one OIDC issuer, e.g. {issuer: https://accounts.google.com, audience: airlock, allowed_hd: [acme.com]}" -}}
{{- end -}}
{{- range $i, $is := $identity.issuers -}}
{{- if not $is.issuer -}}
{{- fail (printf "config.identity.issuers[%d].issuer: required" $i) -}}
{{- end -}}
{{- if and (include "airlock.publicIssuer" $is.issuer) (not (or $is.allowed_subjects $is.allowed_email_domains $is.allowed_hd)) -}}
{{- fail (printf "config.identity.issuers[%d]: anyone can obtain a token from %s; it must be restricted with allowed_subjects, allowed_email_domains or allowed_hd" $i $is.issuer) -}}
{{- end -}}
{{- end -}}
{{- if not $v.credentials -}}
{{- fail "credentials: list the GCP credential Envoy injects, e.g. [{name: gcp-prod, adc: true}] (Workload Identity) or [{name: gcp-prod, existingSecret: SECRET}]" -}}
{{- end -}}
{{- $names := dict -}}
{{- range $i, $cr := $v.credentials -}}
{{- if not $cr.name -}}
{{- fail (printf "credentials[%d].name: required (the SDS secret name Envoy asks for)" $i) -}}
{{- end -}}
{{- if hasKey $names $cr.name -}}
{{- fail (printf "credentials[%d].name: %q is used twice" $i $cr.name) -}}
{{- end -}}
{{- $_ := set $names $cr.name true -}}
{{- if ne (include "airlock.countSet" (list $cr.adc $cr.existingSecret)) "1" -}}
{{- fail (printf "credentials[%d]: set exactly one of adc: true (Workload Identity) and existingSecret (a service-account key)" $i) -}}
{{- end -}}
{{- end -}}
{{- $recorder := $c.recorder | default dict -}}
{{- if and (dig "enabled" true $recorder) (not $recorder.sink) -}}
{{- fail "config.recorder.sink: set gs://BUCKET/PREFIX (written with the pod's Workload Identity), or file:///var/lib/airlock/sessions for a trial (recordings are lost with the pod)" -}}
{{- end -}}
{{- if and $v.redis.url $v.redis.bundled.enabled -}}
{{- fail "redis: set either redis.url or redis.bundled.enabled, not both" -}}
{{- end -}}
{{- if and (not $v.redis.url) (not $v.redis.bundled.enabled) (or $v.autoscaling.enabled (gt (int $v.replicaCount) 1)) -}}
{{- fail "redis.url: replicas share pending approvals and single-use grants through Redis; set redis.url (or redis.bundled.enabled for a trial), or run replicaCount: 1" -}}
{{- end -}}
{{- include "airlock.validatePDB" (dict "key" "podDisruptionBudget" "pdb" $v.podDisruptionBudget "replicas" (ternary $v.autoscaling.minReplicas $v.replicaCount $v.autoscaling.enabled)) -}}
{{- if ne $mode "istio" -}}
{{- if $v.envoy.tls.enabled -}}
{{- if ne (include "airlock.countSet" (list $v.envoy.tls.secretName $v.envoy.tls.certManager.enabled)) "1" -}}
{{- fail "envoy.tls: set exactly one of envoy.tls.secretName (a kubernetes.io/tls Secret) and envoy.tls.certManager.enabled, or envoy.tls.enabled: false" -}}
{{- end -}}
{{- if and $v.envoy.tls.certManager.enabled (not $v.envoy.tls.certManager.issuerRef.name) -}}
{{- fail "envoy.tls.certManager.issuerRef.name: required: the cert-manager issuer of your private CA" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $mode "gateway" -}}
{{- $m := $v.sds.mtls -}}
{{- if $m.certManager.enabled -}}
{{- if or $m.serverSecretName $m.clientSecretName -}}
{{- fail "sds.mtls: set either sds.mtls.certManager or sds.mtls.serverSecretName and clientSecretName, not both" -}}
{{- end -}}
{{- if not $m.certManager.issuerRef.name -}}
{{- fail "sds.mtls.certManager.issuerRef.name: required: a CA issuer, whose ca.crt both sides trust" -}}
{{- end -}}
{{- else if not (and $m.serverSecretName $m.clientSecretName) -}}
{{- fail "sds.mtls.serverSecretName: envoy.mode gateway sends the GCP token over the network: set sds.mtls.serverSecretName and sds.mtls.clientSecretName (Secrets with tls.crt, tls.key and ca.crt) or sds.mtls.certManager" -}}
{{- end -}}
{{- $g := $v.envoy.gateway -}}
{{- include "airlock.validatePDB" (dict "key" "envoy.gateway.podDisruptionBudget" "pdb" $g.podDisruptionBudget "replicas" (ternary $g.autoscaling.minReplicas $g.replicaCount $g.autoscaling.enabled)) -}}
{{- end -}}
{{- if eq $mode "istio" -}}
{{- if ($c.gateway | default dict).domains -}}
{{- fail "config.gateway.domains: endpoint overrides need airlock's own Envoy (envoy.mode sidecar or gateway); with istio agents call SERVICE.googleapis.com through the egress gateway" -}}
{{- end -}}
{{- end -}}
{{- /* The durations the ext_authz timeout is computed from must parse. */ -}}
{{- $_ := include "airlock.extAuthzTimeout" . -}}
{{- end -}}

{{/* How many of a list of values are set (true, non-empty). */}}
{{- define "airlock.countSet" -}}
{{- $n := 0 -}}
{{- range . -}}{{- if . -}}{{- $n = add1 $n -}}{{- end -}}{{- end -}}
{{- $n -}}
{{- end -}}

{{/* A PodDisruptionBudget that can neither block every drain nor be ambiguous. */}}
{{- define "airlock.validatePDB" -}}
{{- if .pdb.enabled -}}
{{- if and (not (kindIs "invalid" .pdb.minAvailable)) (not (kindIs "invalid" .pdb.maxUnavailable)) -}}
{{- fail (printf "%s: set minAvailable or maxUnavailable, not both (set the other to null)" .key) -}}
{{- end -}}
{{- if and (kindIs "invalid" .pdb.minAvailable) (kindIs "invalid" .pdb.maxUnavailable) -}}
{{- fail (printf "%s: set minAvailable or maxUnavailable" .key) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" .pdb.minAvailable)) (not (kindIs "string" .pdb.minAvailable)) (ge (int .pdb.minAvailable) (int .replicas)) -}}
{{- fail (printf "%s.minAvailable: %v of %v replicas would block every node drain" .key .pdb.minAvailable .replicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
airlock.yaml: config, with the keys the chart owns.
*/}}
{{- define "airlock.config" -}}
{{- $v := .Values -}}
{{- $mode := $v.envoy.mode -}}
{{- $c := deepCopy ($v.config | default dict) -}}
{{- $listen := dict "http" (printf "0.0.0.0:%s" (include "airlock.port.http" .)) -}}
{{- if eq $mode "sidecar" -}}
{{- $_ := set $listen "authz" (printf "127.0.0.1:%s" (include "airlock.port.authz" .)) -}}
{{- $_ := set $listen "extproc" (printf "127.0.0.1:%s" (include "airlock.port.extproc" .)) -}}
{{- $_ := set $listen "sds" "unix:///run/airlock/sds.sock" -}}
{{- else -}}
{{- $_ := set $listen "authz" (printf "0.0.0.0:%s" (include "airlock.port.authz" .)) -}}
{{- $_ := set $listen "extproc" (printf "0.0.0.0:%s" (include "airlock.port.extproc" .)) -}}
{{- $_ := set $listen "sds" (printf "0.0.0.0:%s" (include "airlock.port.sds" .)) -}}
{{- end -}}
{{- $_ := set $c "listen" $listen -}}
{{- if eq $mode "gateway" -}}
{{- $_ := set $c "sds" (dict "tls_cert" "/etc/airlock/sds-tls/tls.crt" "tls_key" "/etc/airlock/sds-tls/tls.key" "client_ca" "/etc/airlock/sds-tls/ca.crt") -}}
{{- else if eq $mode "istio" -}}
{{- /* The mesh guards 9003: mTLS STRICT and a DENY for every caller but the egress gateway. */ -}}
{{- $_ := set $c "sds" (dict "allow_insecure_tcp" true) -}}
{{- end -}}
{{- if ne $mode "istio" -}}
{{- $envoy := dict "listen" (printf "0.0.0.0:%v" $v.envoy.port) -}}
{{- $_ := set $envoy "airlock_host" (ternary "127.0.0.1" (include "airlock.grpcHost" .) (eq $mode "sidecar")) -}}
{{- if $v.envoy.tls.enabled -}}
{{- $_ := set $envoy "tls_cert" "/etc/envoy/tls/tls.crt" -}}
{{- $_ := set $envoy "tls_key" "/etc/envoy/tls/tls.key" -}}
{{- end -}}
{{- if eq $mode "gateway" -}}
{{- $_ := set $envoy "sds_tls_cert" "/etc/envoy/sds-tls/tls.crt" -}}
{{- $_ := set $envoy "sds_tls_key" "/etc/envoy/sds-tls/tls.key" -}}
{{- $_ := set $envoy "sds_ca" "/etc/envoy/sds-tls/ca.crt" -}}
{{- end -}}
{{- $_ := set $c "envoy" $envoy -}}
{{- end -}}
{{- $creds := list -}}
{{- range $i, $cr := $v.credentials -}}
{{- $e := dict "name" $cr.name "scopes" ($cr.scopes | default (list "https://www.googleapis.com/auth/cloud-platform")) -}}
{{- if $cr.adc -}}
{{- $_ := set $e "adc" true -}}
{{- else -}}
{{- $_ := set $e "service_account_key" (printf "/etc/airlock/credentials/%d/%s" $i ($cr.secretKey | default "key.json")) -}}
{{- end -}}
{{- $creds = append $creds $e -}}
{{- end -}}
{{- $_ := set $c "credentials" $creds -}}
{{- $approvals := deepCopy ($c.approvals | default dict) -}}
{{- if $v.redis.url -}}
{{- $_ := set $approvals "store" $v.redis.url -}}
{{- else if $v.redis.bundled.enabled -}}
{{- $_ := set $approvals "store" (printf "redis://%s:6379/0" (include "airlock.redisHost" .)) -}}
{{- end -}}
{{- $_ := set $c "approvals" $approvals -}}
{{- $_ := set $c "policies" (merge (dict "paths" (list "/etc/airlock/policies")) ($c.policies | default dict)) -}}
{{- $_ := set $c "recorder" (merge (dict "spool" "/var/lib/airlock/spool") ($c.recorder | default dict)) -}}
{{- toYaml $c -}}
{{- end -}}

{{/*
Envoy's view of airlock.yaml: the keys `airlock envoy config` renders the
bootstrap from, and nothing that may carry a credential (the Redis URL,
webhooks). The Envoy pods mount this, never the Secret.
*/}}
{{- define "airlock.envoyView" -}}
{{- $full := include "airlock.config" . | fromYaml -}}
{{- $view := pick $full "listen" "identity" "authz" "masking" "gateway" "credentials" "envoy" "sds" -}}
{{- $approvals := $full.approvals | default dict -}}
{{- if hasKey $approvals "hold" -}}
{{- $_ := set $view "approvals" (dict "hold" $approvals.hold) -}}
{{- end -}}
{{- toYaml $view -}}
{{- end -}}

{{/* Istio's meshConfig.extensionProviders entry for airlock's ext_authz. */}}
{{- define "airlock.istioExtensionProviders" -}}
extensionProviders:
  - name: {{ .Values.istio.providerName }}
    envoyExtAuthzGrpc:
      service: {{ include "airlock.serviceHost" . }}
      port: {{ include "airlock.port.authz" . }}
      # approvals.hold + authz.timeout + 1s
      timeout: {{ include "airlock.extAuthzTimeout" . }}
      failOpen: false
      statusOnError: "503"
{{- $max := include "airlock.maxBodyBytes" . | int64 }}
{{- if gt $max 0 }}
      includeRequestBodyInCheck:
        maxRequestBytes: {{ $max }}
        allowPartialMessage: true
        packAsBytes: true
{{- end }}
{{- end -}}

{{/* Pod labels and annotations that decide Istio sidecar injection. */}}
{{- define "airlock.istioPodLabels" -}}
{{- if eq .Values.envoy.mode "istio" -}}
{{- if .Values.istio.revision -}}
istio.io/rev: {{ .Values.istio.revision | quote }}
{{- else -}}
sidecar.istio.io/inject: "true"
{{- end -}}
{{- else -}}
sidecar.istio.io/inject: "false"
{{- end -}}
{{- end -}}

{{/* Secrets of the certificates, given or issued by cert-manager. */}}
{{- define "airlock.envoyTLSSecret" -}}
{{- default (printf "%s-envoy-tls" (include "airlock.fullname" .)) .Values.envoy.tls.secretName -}}
{{- end -}}

{{- define "airlock.sdsServerSecret" -}}
{{- default (printf "%s-sds-server" (include "airlock.fullname" .)) .Values.sds.mtls.serverSecretName -}}
{{- end -}}

{{- define "airlock.sdsClientSecret" -}}
{{- default (printf "%s-sds-client" (include "airlock.fullname" .)) .Values.sds.mtls.clientSecretName -}}
{{- end -}}
