package infra

import (
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/monitoring"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	// volumeUtilizationMetric is GKE's system metric for how full a pod's volume is, a fraction from
	// 0 to 1, on the k8s_pod resource, with the pod's volume name as the metric label volume_name. GKE
	// exports it from the kubelet's volume stats for PersistentVolumeClaim volumes.
	volumeUtilizationMetric = "kubernetes.io/pod/volume/utilization"
	// alertDuration is how long the volume must stay above the threshold before the alert fires: long
	// enough to ignore a dump being written and gzipped, short against a disk that fills over days.
	alertDuration = "600s"
)

// VolumeAlertArgs says which volume the alert watches and whom it tells.
type VolumeAlertArgs struct {
	Project   string
	Namespace pulumi.StringOutput
	Alert     AlertConfig
}

// NewVolumeAlert declares a Cloud Monitoring alert policy that fires when the loklak pod's dumps volume
// stays more than the configured percent full. loklak stops writing dumps on a full disk and reports it
// nowhere a person looks, so this is how anyone learns to grow diskSizeGb in time.
func NewVolumeAlert(ctx *pulumi.Context, name string, args VolumeAlertArgs, opts ...pulumi.ResourceOption) (*monitoring.AlertPolicy, error) {
	filter := pulumi.Sprintf(`resource.type = "k8s_pod" AND resource.labels.namespace_name = %q AND metric.type = %q AND metric.labels.volume_name = %q`,
		args.Namespace, volumeUtilizationMetric, dataVolumeName)
	channels := pulumi.StringArray{}
	for _, ch := range args.Alert.Channels {
		channels = append(channels, pulumi.String(ch))
	}
	return monitoring.NewAlertPolicy(ctx, name, &monitoring.AlertPolicyArgs{
		Project:     pulumi.String(args.Project),
		DisplayName: pulumi.Sprintf("loklak dumps volume in %s over %d%% full", args.Namespace, args.Alert.Percent),
		Combiner:    pulumi.String("OR"),
		Conditions: monitoring.AlertPolicyConditionArray{&monitoring.AlertPolicyConditionArgs{
			DisplayName: pulumi.Sprintf("%s/%s volume utilization above %d%%", args.Namespace, ClaimName, args.Alert.Percent),
			ConditionThreshold: &monitoring.AlertPolicyConditionConditionThresholdArgs{
				Filter:         filter,
				Comparison:     pulumi.String("COMPARISON_GT"),
				ThresholdValue: pulumi.Float64(float64(args.Alert.Percent) / 100),
				Duration:       pulumi.String(alertDuration),
				Aggregations: monitoring.AlertPolicyConditionConditionThresholdAggregationArray{
					&monitoring.AlertPolicyConditionConditionThresholdAggregationArgs{
						AlignmentPeriod:  pulumi.String("300s"),
						PerSeriesAligner: pulumi.String("ALIGN_MAX"),
					},
				},
			},
		}},
		NotificationChannels: channels,
		Severity:             pulumi.String("WARNING"),
		Documentation: &monitoring.AlertPolicyDocumentationArgs{
			MimeType: pulumi.String("text/markdown"),
			Content: pulumi.String("The loklak dumps disk is filling up; loklak stops writing dumps when it is full. " +
				"Grow it in place: `pulumi config set diskSizeGb <bigger>` and `pulumi up` (a disk only grows; see the README)."),
		},
		UserLabels: pulumi.StringMap{"app": pulumi.String("loklak-dumps")},
	}, opts...)
}
