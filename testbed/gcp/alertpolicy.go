package gcp

import (
	"slices"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// AlertPolicyType is the Cloud Monitoring alert policy; the stand-in implements threshold conditions.
const AlertPolicyType = "gcp:monitoring/alertPolicy:AlertPolicy"

// alertPolicyKind is gcp:monitoring/alertPolicy:AlertPolicy (monitoring-rules.md).
type alertPolicyKind struct{}

// serverNamed: the API names a policy (its name is an output), so a replacement is create-before-delete.
func (alertPolicyKind) serverNamed() {}

var (
	alertPolicyProps = []string{"alertStrategy", "combiner", "conditions", "displayName", "documentation", "enabled",
		"notificationChannels", "project", "severity", "userLabels"}
	alertCombiners   = []string{"AND", "OR", "AND_WITH_MATCHING_RESOURCE"}
	alertComparisons = []string{"COMPARISON_GT", "COMPARISON_GE", "COMPARISON_LT", "COMPARISON_LE", "COMPARISON_EQ", "COMPARISON_NE"}
	alertSeverities  = []string{"CRITICAL", "ERROR", "WARNING"}
	// conditionKinds are a condition's alternatives; exactly one is set. The stand-in evaluates none of
	// them and implements only conditionThreshold's rules.
	conditionKinds = []string{"conditionThreshold", "conditionAbsent", "conditionMatchedLog",
		"conditionMonitoringQueryLanguage", "conditionPrometheusQueryLanguage"}
)

func (alertPolicyKind) check(_ *Provider, _ string, _, news map[string]any, _ []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, alertPolicyProps, AlertPolicyType)
	for _, key := range []string{"displayName", "combiner", "conditions"} {
		if isEmpty(inputs[key]) {
			failures = append(failures, failure(key, "Missing required argument: %s is required", key))
		}
	}
	failures = append(failures, oneOf(inputs, "combiner", "combiner", alertCombiners)...)
	failures = append(failures, oneOf(inputs, "severity", "severity", alertSeverities)...)
	conditions, _ := inputs["conditions"].([]any)
	for i, c := range conditions {
		condition, _ := c.(map[string]any)
		at := func(key string) string { return "conditions[" + strconv.Itoa(i) + "]." + key }
		if isEmpty(condition["displayName"]) {
			failures = append(failures, failure(at("displayName"), "Missing required argument: displayName is required"))
		}
		var set []string
		for _, k := range conditionKinds {
			if !isEmpty(condition[k]) {
				set = append(set, k)
			}
		}
		if len(set) != 1 {
			failures = append(failures, failure(at("conditionThreshold"), "exactly one of %v must be set, got %v", conditionKinds, set))
			continue
		}
		threshold, ok := condition["conditionThreshold"].(map[string]any)
		if !ok {
			continue
		}
		for _, key := range []string{"comparison", "duration"} {
			if isEmpty(threshold[key]) {
				failures = append(failures, failure(at("conditionThreshold."+key), "Missing required argument: %s is required", key))
			}
		}
		failures = append(failures, oneOf(threshold, "comparison", at("conditionThreshold.comparison"), alertComparisons)...)
	}
	// The schema's default, filled in and recorded as the bridge does: enabled is true unless given.
	defaults := []any{}
	if _, set := inputs["enabled"]; !set {
		inputs["enabled"] = true
		defaults = append(defaults, "enabled")
	}
	inputs[defaultsKey] = defaults
	return inputs, failures
}

// oneOf fails inputs[key] set to a value outside its list, as the provider's validation does, naming the
// property by its path from the resource (a key of a nested block has a longer one).
func oneOf(inputs map[string]any, key, property string, allowed []string) []plugin.CheckFailure {
	v, ok := inputs[key]
	if !ok || v == nil || isUnknown(v) || slices.Contains(allowed, str(v)) {
		return nil
	}
	return []plugin.CheckFailure{failure(property, "expected %s to be one of %q, got %s", key, allowed, str(v))}
}

// diff: project replaces the policy; every other field is patched in place (monitoring-rules.md).
func (alertPolicyKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, alertPolicyProps, []string{"project", "enabled"})
	if slices.Contains(changed, "project") {
		replaces = []string{"project"}
	}
	return changed, replaces
}

// policyBody is what the provider sends: the inputs without the project (it is in the URL).
func policyBody(in map[string]any) map[string]any {
	body := clone(in)
	delete(body, "project")
	delete(body, defaultsKey)
	return body
}

func alertPolicyState(a AlertPolicy, inputs map[string]any) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	for k, v := range a.Policy {
		state[k] = v
	}
	state["name"], state["project"] = a.Name, a.Project
	state["creationRecords"] = []any{map[string]any{"mutateTime": a.CreationTime, "mutatedBy": "stand-in"}}
	return state
}

func (alertPolicyKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, err := resolve(in["project"], p.project, "project")
	if err != nil {
		return "", nil, err
	}
	if preview {
		state := withoutDefaults(in)
		state["project"], state["name"], state["creationRecords"] = project, unknown{}, unknown{}
		return "", state, nil
	}
	a, err := p.compute.CreateAlertPolicy(project, policyBody(in))
	if err != nil {
		return "", nil, err
	}
	return a.Name, alertPolicyState(a, in), nil
}

func (alertPolicyKind) read(p *Provider, id string, oldInputs, _ map[string]any) (string, map[string]any, map[string]any, error) {
	a, err := p.compute.GetAlertPolicy(id)
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	// The state is what was read, so a change made in the console shows as drift (diffs compare new
	// inputs with the state).
	state := alertPolicyState(a, nil)
	inputs := clone(oldInputs)
	if len(oldInputs) == 0 { // import by name: the inputs are what was read
		inputs = policyBody(a.Policy)
		inputs["project"], inputs[defaultsKey] = a.Project, []any{}
	}
	return a.Name, inputs, state, nil
}

func (alertPolicyKind) update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	if preview {
		return withInputs(oldState, news), nil
	}
	a, err := p.compute.PatchAlertPolicy(id, policyBody(news))
	if err != nil {
		return nil, err
	}
	return alertPolicyState(a, news), nil
}

func (alertPolicyKind) delete(p *Provider, id string, _ map[string]any) error {
	if err := p.compute.DeleteAlertPolicy(id); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
