package gcp

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// AccountType is an IAM service account (../shared/notes/gcs-provider-rules.md §2; "gcs rules" below).
const AccountType = "gcp:serviceaccount/account:Account"

// accountKind is gcp:serviceaccount/account:Account, over the simulated IAM API (serviceaccount.go).
type accountKind struct{}

var (
	accountProps = []string{"accountId", "displayName", "description", "disabled", "project", "createIgnoreAlreadyExists"}
	// accountComputed: project is Optional+Computed, disabled is filled in by Check.
	accountComputed = []string{"project", "disabled"}
	// accountIDRE is the provider's check of accountId: 6-30 characters, a letter first, no hyphen last
	// ([SA] L52-58; [V] L198-212).
	accountIDRE = regexp.MustCompile(`^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$`)
)

// maxAccountDescription is the longest description the provider accepts, in bytes (gcs rules §2).
const maxAccountDescription = 256

// createBeforeDelete marks the kinds the engine replaces create-before-delete: the three without a name
// input (gcs rules §0 "Replace order": Account, BucketIAMMember, IAMMember, [RUN] dbr=false).
func (accountKind) createBeforeDelete() {}

func (accountKind) check(_ *Provider, _ string, _, news map[string]any, _ []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, accountProps, AccountType)
	var defaults []any
	switch id, ok := inputs["accountId"]; {
	case !ok || id == nil:
		failures = append(failures, failure("accountId", "Missing required argument. The argument \"account_id\" is required, but no definition was found."))
	case !isUnknown(id) && !accountIDRE.MatchString(str(id)):
		failures = append(failures, failure("accountId", "\"account_id\" (%q) doesn't match regexp %q", str(id), accountIDRE.String()))
	}
	if d, ok := inputs["description"].(string); ok && len(d) > maxAccountDescription {
		failures = append(failures, failure("description", "expected length of description to be in the range (0 - %d), got %s", maxAccountDescription, d))
	}
	if _, ok := inputs["disabled"]; !ok {
		inputs["disabled"] = false // the schema's default (gcs rules §2)
		defaults = append(defaults, "disabled")
	}
	inputs[defaultsKey] = defaults
	return inputs, failures
}

// diff: accountId and project replace; displayName, description and disabled are in place (gcs rules §2).
func (accountKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, accountProps, accountComputed)
	for _, key := range changed {
		if key == "accountId" || key == "project" {
			replaces = append(replaces, key)
		}
	}
	return changed, replaces
}

// create: POST, then the GETs the provider makes while it waits for the account (gcs rules §2 "Create";
// the provider's fixed 10 s sleep is not simulated). With createIgnoreAlreadyExists, a 409 adopts the
// existing account.
func (accountKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, err := resolve(in["project"], p.project, "project")
	if err != nil {
		return "", nil, err
	}
	if preview {
		state := withoutDefaults(in)
		state["project"] = project
		for _, k := range []string{"email", "uniqueId", "name", "member"} {
			state[k] = unknown{}
		}
		return "", state, nil
	}
	id := str(in["accountId"])
	a, err := p.compute.CreateServiceAccount(project, id, str(in["displayName"]), str(in["description"]))
	if IsConflict(err) && in["createIgnoreAlreadyExists"] == true {
		err = nil
		a.Name = ServiceAccountPath(project, ServiceAccountEmail(project, id))
	}
	if err != nil {
		return "", nil, fmt.Errorf("error creating service account: %w", err)
	}
	for range 3 {
		if a, err = p.compute.GetServiceAccount(a.Name); err != nil {
			return "", nil, err
		}
	}
	if in["disabled"] == true {
		if a, err = p.compute.SetServiceAccountDisabled(a.Name, true); err != nil {
			return "", nil, err
		}
	}
	return a.Name, accountState(a, in), nil
}

// IsConflict reports whether err is the API's 409.
func IsConflict(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 409
}

// accountState: the inputs, with the account as read (gcs rules §2 "Outputs").
func accountState(a ServiceAccount, inputs map[string]any) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	state["accountId"], state["project"] = strings.SplitN(a.Email, "@", 2)[0], a.ProjectID
	state["displayName"], state["description"], state["disabled"] = a.DisplayName, a.Description, a.Disabled
	state["email"], state["uniqueId"], state["name"], state["member"] = a.Email, a.UniqueID, a.Name, "serviceAccount:"+a.Email
	if _, ok := inputs["description"]; !ok && a.Description == "" {
		delete(state, "description")
	}
	if _, ok := inputs["displayName"]; !ok && a.DisplayName == "" {
		delete(state, "displayName")
	}
	return state
}

// accountName resolves an import ID: projects/P/serviceAccounts/EMAIL, P/EMAIL or EMAIL, the project then
// from the configuration (gcs rules §2 "ID", [SA] L308-325).
func (p *Provider) accountName(id string) (string, error) {
	parts := strings.Split(id, "/")
	switch {
	case len(parts) == 4 && parts[0] == "projects" && parts[2] == "serviceAccounts":
		return id, nil
	case len(parts) == 2 && strings.Contains(parts[1], "@"):
		return ServiceAccountPath(parts[0], parts[1]), nil
	case len(parts) == 1 && strings.Contains(id, "@"):
		project, err := resolve(nil, p.project, "project")
		if err != nil {
			return "", err
		}
		return ServiceAccountPath(project, id), nil
	}
	return "", fmt.Errorf("Import id %q doesn't match any of the accepted formats: [projects/{project}/serviceAccounts/{email} {project}/{email} {email}]", id) //nolint:staticcheck // the provider's message
}

// read: a 404 drops the account at once (gcs rules §2 "Read when gone").
func (accountKind) read(p *Provider, id string, oldInputs, _ map[string]any) (string, map[string]any, map[string]any, error) {
	name, err := p.accountName(id)
	if err != nil {
		return "", nil, nil, err
	}
	a, err := p.compute.GetServiceAccount(name)
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	inputs := clone(oldInputs)
	if len(oldInputs) == 0 {
		inputs = map[string]any{"accountId": strings.SplitN(a.Email, "@", 2)[0], "project": a.ProjectID, "disabled": a.Disabled, defaultsKey: []any{}}
		if a.DisplayName != "" {
			inputs["displayName"] = a.DisplayName
		}
		if a.Description != "" {
			inputs["description"] = a.Description
		}
	}
	return a.Name, inputs, accountState(a, inputs), nil
}

// update: a GET, then :disable or :enable for disabled, then one PATCH with the mask of the changed
// displayName and description (a dropped description is sent absent, clearing it; gcs rules §2 "Update").
func (k accountKind) update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	if preview {
		return withInputs(oldState, news), nil
	}
	a, err := p.compute.GetServiceAccount(id)
	if err != nil {
		return nil, err
	}
	changed, _ := k.diff(p, oldState, oldState, news)
	var mask []string
	for _, key := range changed {
		switch key {
		case "disabled":
			if a, err = p.compute.SetServiceAccountDisabled(id, news["disabled"] == true); err != nil {
				return nil, err
			}
		case "displayName":
			mask = append(mask, "display_name")
		case "description":
			mask = append(mask, "description")
		}
	}
	if len(mask) > 0 {
		if a, err = p.compute.PatchServiceAccount(id, strings.Join(mask, ","), str(news["displayName"]), str(news["description"]), a.Etag); err != nil {
			return nil, err
		}
	}
	return accountState(a, news), nil
}

// delete: a 404 counts as success (gcs rules §2 "Delete").
func (accountKind) delete(p *Provider, id string, _ map[string]any) error {
	if err := p.compute.DeleteServiceAccount(id); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
