package gcp

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// policyKind is gcp:compute/resourcePolicy:ResourcePolicy with a snapshotSchedulePolicy (rules §3).
type policyKind struct{}

var (
	policyProps = []string{"name", "region", "project", "description", "snapshotSchedulePolicy",
		"diskConsistencyGroupPolicy", "groupPlacementPolicy", "instanceSchedulePolicy"}
	// policyForceNew: since TPG v5.38 only these replace the policy. name is not among them: the
	// rename bug, a PATCH sent to the new name's URL (rules §3).
	policyForceNew = []string{"region", "project", "diskConsistencyGroupPolicy"}
	weekdays       = []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
	// hourlyOnlyRE is ValidateHourlyOnly's accepted shape: H:MM or HH:MM (rules §3).
	hourlyOnlyRE = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})$`)
)

func (policyKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	var failures []plugin.CheckFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, failure(prop, format, args...))
	}
	failures = append(failures, unknownInputs(inputs, policyProps, PolicyType)...)
	if ssp, ok := inputs["snapshotSchedulePolicy"].(map[string]any); ok {
		ssp = clone(ssp)
		inputs["snapshotSchedulePolicy"] = ssp
		checkSchedule(ssp["schedule"], fail)
		if rp, ok := ssp["retentionPolicy"].(map[string]any); ok {
			rp = clone(rp)
			ssp["retentionPolicy"] = rp
			if _, set := rp["maxRetentionDays"]; !set {
				fail("snapshotSchedulePolicy.retentionPolicy.maxRetentionDays", "The argument \"max_retention_days\" is required, but no definition was found.")
			}
			if _, set := rp["onSourceDiskDelete"]; !set {
				rp["onSourceDiskDelete"] = "KEEP_AUTO_SNAPSHOTS" // the schema's default
			}
			if v := str(rp["onSourceDiskDelete"]); v != "KEEP_AUTO_SNAPSHOTS" && v != "APPLY_RETENTION_POLICY" && !isUnknown(rp["onSourceDiskDelete"]) {
				fail("snapshotSchedulePolicy.retentionPolicy.onSourceDiskDelete", "expected on_source_disk_delete to be one of [KEEP_AUTO_SNAPSHOTS APPLY_RETENTION_POLICY], got %s", v)
			}
		}
		if sp, ok := ssp["snapshotProperties"].(map[string]any); ok {
			if isEmpty(sp["labels"]) && isEmpty(sp["storageLocations"]) && sp["guestFlush"] == nil {
				fail("snapshotSchedulePolicy.snapshotProperties", "at least one of labels, storageLocations, guestFlush must be specified")
			}
			if locs, _ := sp["storageLocations"].([]any); len(locs) > 1 {
				fail("snapshotSchedulePolicy.snapshotProperties.storageLocations", "attribute supports 1 item maximum, but config has %d declared", len(locs))
			}
		}
	}
	defaults := autoname(inputs, olds, name, seed)
	inputs[defaultsKey] = defaults
	return inputs, failures
}

// checkSchedule: exactly one of hourly, daily, weekly; the hourly and daily start time as H:00 (rules §3).
func checkSchedule(v any, fail func(prop, format string, args ...any)) {
	schedule, ok := v.(map[string]any)
	if !ok {
		if !isUnknown(v) {
			fail("snapshotSchedulePolicy.schedule", "The argument \"schedule\" is required, but no definition was found.")
		}
		return
	}
	var set []string
	for _, k := range []string{"hourlySchedule", "dailySchedule", "weeklySchedule"} {
		if schedule[k] != nil {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		// ExactlyOneOf: the provider fails every member of the group, set or not.
		for _, k := range []string{"dailySchedule", "hourlySchedule", "weeklySchedule"} {
			if len(set) == 0 {
				fail("snapshotSchedulePolicy.schedule."+k, "one of dailySchedule, hourlySchedule, weeklySchedule must be specified")
			} else {
				fail("snapshotSchedulePolicy.schedule."+k, "only one of dailySchedule, hourlySchedule, weeklySchedule can be specified, got %v", set)
			}
		}
		return
	}
	for _, k := range []string{"hourlySchedule", "dailySchedule"} {
		if s, ok := schedule[k].(map[string]any); ok {
			if t, ok := s["startTime"].(string); ok {
				if err := validateHourlyOnly(t); err != nil {
					fail("snapshotSchedulePolicy.schedule."+k+".startTime", "%s", err)
				}
			}
		}
	}
	if w, ok := schedule["weeklySchedule"].(map[string]any); ok {
		days, _ := w["dayOfWeeks"].([]any)
		if len(days) < 1 || len(days) > 7 {
			fail("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks", "attribute requires 1 to 7 items, got %d", len(days))
		}
		for _, d := range days {
			day := str(asMap(d)["day"])
			if !slices.Contains(weekdays, day) && !isUnknown(asMap(d)["day"]) {
				fail("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks.day", "expected day to be one of %v, got %s", weekdays, day)
			}
		}
	}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// validateHourlyOnly is the provider's start-time check: H:MM with minutes "00" and 0 <= H <= 23, so "5:00"
// passes (rules §3).
func validateHourlyOnly(t string) error {
	m := hourlyOnlyRE.FindStringSubmatch(t)
	if m == nil {
		return fmt.Errorf("%q must be in the format HH:00, got: %s", "start_time", t)
	}
	h, _ := strconv.Atoi(m[1])
	if m[2] != "00" || h < 0 || h > 23 {
		return fmt.Errorf("%q must be in the format HH:00, got: %s", "start_time", t)
	}
	return nil
}

func (policyKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, policyProps, []string{"region", "project", "name"})
	for _, key := range changed {
		if slices.Contains(policyForceNew, key) {
			replaces = append(replaces, key)
		}
	}
	return changed, replaces
}

func (policyKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, region, err := p.regionalScope(in)
	if err != nil {
		return "", nil, err
	}
	name := str(in["name"])
	if preview {
		state := withoutDefaults(in)
		state["project"], state["region"], state["selfLink"] = project, region, unknown{}
		return "", state, nil
	}
	rp, err := p.compute.InsertResourcePolicy(ResourcePolicy{
		Name: name, Project: project, Region: region, Description: str(in["description"]),
		SnapshotSchedulePolicy: requestBody(in["snapshotSchedulePolicy"]),
	})
	if err != nil {
		return "", nil, err
	}
	return PolicyPath(project, region, name), policyState(rp, in), nil
}

// regionalScope is a regional resource's project and region: its own, else the provider configuration's
// project and region (or the region of its zone), as the real provider falls back.
func (p *Provider) regionalScope(in map[string]any) (project, region string, err error) {
	if project, err = resolve(in["project"], p.project, "project"); err != nil {
		return "", "", err
	}
	fallback := p.region
	if fallback == "" && p.zone != "" {
		fallback = RegionOf(p.zone)
	}
	region, err = resolve(in["region"], fallback, "region")
	return project, region, err
}

// requestBody is the snapshotSchedulePolicy the provider sends. In this version it always puts guestFlush
// into snapshotProperties, false when unset (rules §9.1).
func requestBody(v any) map[string]any {
	ssp := deepClone(asMap(v))
	if sp, ok := ssp["snapshotProperties"].(map[string]any); ok {
		if _, set := sp["guestFlush"]; !set {
			sp["guestFlush"] = false
		}
	}
	return ssp
}

func deepClone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = deepClone(x)
		case []any:
			list := make([]any, len(x))
			for i, e := range x {
				if em, ok := e.(map[string]any); ok {
					list[i] = deepClone(em)
				} else {
					list[i] = e
				}
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	return out
}

// policyState is the provider's state: what the API holds (which omits a false guestFlush), plus selfLink.
func policyState(rp ResourcePolicy, inputs map[string]any) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	state["name"], state["project"], state["region"] = rp.Name, rp.Project, rp.Region
	state["description"] = rp.Description
	ssp := deepClone(rp.SnapshotSchedulePolicy)
	if sp, ok := ssp["snapshotProperties"].(map[string]any); ok && sp["guestFlush"] == false {
		delete(sp, "guestFlush")
	}
	state["snapshotSchedulePolicy"] = ssp
	state["selfLink"] = rp.SelfLink()
	return state
}

func (policyKind) read(p *Provider, id string, oldInputs, _ map[string]any) (string, map[string]any, map[string]any, error) {
	f, err := parseImportID(id, regionalIDs("resourcePolicies"), map[string]string{"project": p.project, "region": p.region})
	if err != nil {
		return "", nil, nil, err
	}
	rp, err := p.compute.GetResourcePolicy(f["project"], f["region"], f["name"])
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	state := policyState(rp, oldInputs)
	inputs := clone(oldInputs)
	if len(inputs) == 0 {
		inputs = map[string]any{"name": rp.Name, "project": rp.Project, "region": rp.Region, defaultsKey: []any{}}
	}
	for _, k := range []string{"snapshotSchedulePolicy", "description"} {
		if _, ok := inputs[k]; ok || len(oldInputs) == 0 {
			inputs[k] = state[k]
		}
	}
	return PolicyPath(rp.Project, rp.Region, rp.Name), inputs, state, nil
}

// update PATCHes the whole policy, to the URL of the new name (rules §3, rename bug), with guestFlush in
// the body (rules §9.1): Compute Engine refuses it whenever snapshotProperties is present.
func (policyKind) update(p *Provider, _ string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	project, region, err := p.regionalScope(news)
	if err != nil {
		return nil, err
	}
	if preview {
		return withInputs(oldState, news), nil
	}
	rp, err := p.compute.PatchResourcePolicy(ResourcePolicy{
		Name: str(news["name"]), Project: project, Region: region, Description: str(news["description"]),
		SnapshotSchedulePolicy: requestBody(news["snapshotSchedulePolicy"]),
	})
	if err != nil {
		return nil, err
	}
	return policyState(rp, news), nil
}

func (policyKind) delete(p *Provider, id string, _ map[string]any) error {
	f, err := parseImportID(id, []string{"projects/{project}/regions/{region}/resourcePolicies/{name}"}, nil)
	if err != nil {
		return err
	}
	if err := p.compute.DeleteResourcePolicy(f["project"], f["region"], f["name"]); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
