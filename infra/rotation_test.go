package infra_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
)

const (
	tCronJob     = "kubernetes:batch/v1:CronJob"
	tRole        = "kubernetes:rbac.authorization.k8s.io/v1:Role"
	tRoleBinding = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
	tRotation    = "loklak-dumps:app:DumpRotation"
)

func stringsOf(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// The committed stacks restart loklak once a day at midnight UTC, with kubectl rollout restart and then
// rollout status on loklak's Deployment, in loklak's namespace, as a service account that can do exactly
// that to that one Deployment.
func TestCommittedStacksRotateDumpsDaily(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			rec := mustRun(t, stack, nil)
			ns := rec.One(t, tDeployment).String("metadata.namespace")
			cron := rec.One(t, tCronJob)
			wantParent(t, rec, cron, tRotation)
			want(t, "name", cron.String("metadata.name"), infra.RotationName)
			want(t, "namespace", cron.String("metadata.namespace"), ns)
			want(t, "schedule", cron.String("spec.schedule"), "0 0 * * *")
			want(t, "time zone", cron.String("spec.timeZone"), "Etc/UTC")
			want(t, "concurrency", cron.String("spec.concurrencyPolicy"), "Forbid")
			want(t, "backoff", cron.Get("spec.jobTemplate.spec.backoffLimit"), any(float64(0)))
			pod := "spec.jobTemplate.spec.template.spec."
			want(t, "service account", cron.String(pod+"serviceAccountName"), infra.RotationName)
			want(t, "restart policy", cron.String(pod+"restartPolicy"), "Never")
			want(t, "non-root", cron.Get(pod+"securityContext.runAsNonRoot"), any(true))
			want(t, "uid", cron.Get(pod+"securityContext.runAsUser"), any(float64(infra.RotationUID)))

			inits := cron.Get(pod + "initContainers").([]any)
			mains := cron.Get(pod + "containers").([]any)
			if len(inits) != 1 || len(mains) != 1 {
				t.Fatalf("init containers %d, containers %d; want the restart, then the wait", len(inits), len(mains))
			}
			restart, wait := inits[0].(map[string]any), mains[0].(map[string]any)
			want(t, "restart", strings.Join(stringsOf(restart["command"]), " "),
				"kubectl rollout restart deployment/"+infra.ServerName+" --namespace "+ns)
			timeout := "--timeout 600s" // startupTimeoutSeconds (300) plus five minutes
			want(t, "wait", strings.Join(stringsOf(wait["command"]), " "),
				"kubectl rollout status deployment/"+infra.ServerName+" --namespace "+ns+" "+timeout)
			for _, c := range []map[string]any{restart, wait} {
				want(t, "image", c["image"].(string), "registry.k8s.io/kubectl:v1.33.13")
				want(t, "pull", c["imagePullPolicy"].(string), "IfNotPresent")
			}

			role := rec.One(t, tRole)
			rules := role.Get("rules").([]any)
			if len(rules) != 1 {
				t.Fatalf("role rules = %v, want one", rules)
			}
			rule := rules[0].(map[string]any)
			wantDeep(t, "role resources", stringsOf(rule["resources"]), []string{"deployments"})
			wantDeep(t, "role resource names", stringsOf(rule["resourceNames"]), []string{infra.ServerName})
			verbs := stringsOf(rule["verbs"])
			slices.Sort(verbs)
			wantDeep(t, "role verbs", verbs, []string{"get", "list", "patch", "watch"})
			binding := rec.One(t, tRoleBinding)
			want(t, "binding role", binding.String("roleRef.name"), infra.RotationName)
			subject := binding.Get("subjects").([]any)[0].(map[string]any)
			want(t, "binding subject", subject["name"].(string), infra.RotationName)
			want(t, "binding namespace", subject["namespace"].(string), ns)

			// The rotation follows the Deployment by data flow: it is created after it.
			wantDependsOn(t, role, tDeployment, infra.ServerName)
		})
	}
}

func TestRotationFollowsConfig(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"dumpRotationHourUtc": "3", "dumpRotationImage": "registry.k8s.io/kubectl:v1.34.2"})
	cron := rec.One(t, tCronJob)
	want(t, "schedule", cron.String("spec.schedule"), "0 3 * * *")
	restart := cron.Get("spec.jobTemplate.spec.template.spec.initContainers").([]any)[0].(map[string]any)
	want(t, "image", restart["image"].(string), "registry.k8s.io/kubectl:v1.34.2")

	rec = mustRun(t, "dev", map[string]string{"dumpRotationEnabled": "false"})
	for _, typ := range []string{tCronJob, tRole, tRoleBinding, tRotation} {
		if n := len(rec.OfType(typ)); n != 0 {
			t.Errorf("%d %s declared with dumpRotationEnabled false", n, typ)
		}
	}
}

func TestRotationConfigIsChecked(t *testing.T) {
	for _, tc := range []struct{ key, value, says string }{
		{"dumpRotationHourUtc", "24", "from 0 to 23"},
		{"dumpRotationHourUtc", "-1", "from 0 to 23"},
		{"dumpRotationImage", "registry.k8s.io/kubectl:latest", ":latest"},
		{"dumpRotationEnabled", "daily", "true or false"},
	} {
		_, err := runStack(t, "dev", map[string]string{tc.key: tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.value) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s=%s: err = %v, want one naming the key, the value and %q", tc.key, tc.value, err, tc.says)
		}
	}
}

// Only the rotation's own pod mounts a service account token.
func TestOnlyTheRotationTalksToTheAPI(t *testing.T) {
	rec := mustRun(t, "prod", nil)
	want(t, "loklak's pod token", rec.One(t, tDeployment).Get("spec.template.spec.automountServiceAccountToken"), any(false))
	want(t, "rotation's pod token", rec.One(t, tCronJob).Get("spec.jobTemplate.spec.template.spec.automountServiceAccountToken"), any(true))
}
