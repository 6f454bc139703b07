package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/serviceaccount"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/storage"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Roles the archiver gets on the bucket, and nothing more: objectCreator adds objects (it cannot
// delete or overwrite one: that needs storage.objects.delete), objectViewer lists and reads them, which
// rclone needs to compare a local file with the object before it copies or prunes.
var archiverBucketRoles = []string{"roles/storage.objectCreator", "roles/storage.objectViewer"}

// ArchiverKubernetesServiceAccount is the Kubernetes service account loklak's pod runs as when the
// archiver copies: the one Workload Identity maps to the archiver's Google service account.
const ArchiverKubernetesServiceAccount = "loklak-server"

// DumpArchive is the Cloud Storage side of the archive: the bucket that keeps every closed dump file,
// and, while the archiver runs, the Google service account it acts as, with its two roles on the bucket
// and the Workload Identity grant that lets loklak's Kubernetes service account act as it.
type DumpArchive struct {
	pulumi.ResourceState

	Bucket *storage.Bucket
	// BucketName is the bucket's name from its outputs, so the pod's archiver waits for the bucket.
	BucketName pulumi.StringOutput
	// URL is gs://NAME.
	URL pulumi.StringOutput
	// PublicURL is https://storage.googleapis.com/NAME/ when the archive is public, else "".
	PublicURL pulumi.StringOutput
	// AccountEmail is the archiver's Google service account, for the Kubernetes service account's
	// iam.gke.io/gcp-service-account annotation; "" when the archiver is off.
	AccountEmail pulumi.StringOutput
}

// DumpArchiveArgs places the archive and names the Kubernetes identity it trusts.
type DumpArchiveArgs struct {
	Project string
	Archive ArchiveConfig
	// Namespace and KubernetesServiceAccount form the Workload Identity member
	// serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA].
	Namespace                string
	KubernetesServiceAccount string
}

// NewDumpArchive declares the bucket and, when cfg.Archive.Copying(), the archiver's identity and grants.
//
// Sources: ../shared/notes/gcs-provider-rules.md ("gcs rules §N"), the rules of pulumi-gcp v7.38.0.
func NewDumpArchive(ctx *pulumi.Context, name string, args DumpArchiveArgs, opts ...pulumi.ResourceOption) (*DumpArchive, error) {
	a := &DumpArchive{}
	if err := ctx.RegisterComponentResource("loklak-dumps:storage:DumpArchive", name, a, opts...); err != nil {
		return nil, err
	}
	cfg := args.Archive
	// The bucket holds every dump ever archived. Its name is explicit, so any replacement (a rename, a
	// location or project change) deletes it first (gcs rules §1): protect makes the engine refuse that,
	// and a delete the user allows (after `pulumi state unprotect`) leaves it in Google Cloud. The program
	// never sets forceDestroy, which would delete every object with the bucket.
	bucket, err := storage.NewBucket(ctx, "bucket", &storage.BucketArgs{
		Name:         pulumi.String(cfg.Bucket),
		Project:      pulumi.String(args.Project),
		Location:     pulumi.String(cfg.Location),
		StorageClass: pulumi.String("STANDARD"),
		ForceDestroy: pulumi.Bool(false),
		// IAM only, no object ACLs: the grants below are the whole story of who reads and writes.
		UniformBucketLevelAccess: pulumi.Bool(true),
		PublicAccessPrevention:   pulumi.String(cfg.PublicAccessPrevention),
		// An overwritten or deleted object stays as a noncurrent version; the archiver can do neither,
		// but a person with more rights can. Off with a retention policy, which protects objects for the
		// retention period instead (soft delete after it): Cloud Storage refuses the two together
		// (cloud.google.com/storage/docs/bucket-lock). Turning versioning off keeps noncurrent versions.
		Versioning: &storage.BucketVersioningArgs{Enabled: pulumi.Bool(cfg.RetentionDays == 0)},
		// Stated, never left to the project's default: dropping the block keeps whatever the bucket has
		// (gcs rules §5.2), and 0 is the only way to turn it off.
		SoftDeletePolicy: &storage.BucketSoftDeletePolicyArgs{RetentionDurationSeconds: pulumi.Int(cfg.SoftDeleteDays * 86400)},
		RetentionPolicy:  retentionPolicy(cfg),
		LifecycleRules:   lifecycleRules(cfg),
	}, pulumi.Parent(a), pulumi.Protect(true), pulumi.RetainOnDelete(true))
	if err != nil {
		return nil, err
	}
	a.Bucket, a.BucketName, a.URL = bucket, bucket.Name, bucket.Url
	a.PublicURL = pulumi.String("").ToStringOutput()
	a.AccountEmail = pulumi.String("").ToStringOutput()

	// Every IAM member is delete-before-replace: in pulumi-gcp v7.38.0 a member's replacement is
	// create-before-delete, and when old and new mean the same binding the create is a no-op and the
	// old one's delete removes the grant, silently (pulumi-gcp#2463; gcs rules §5.1). Members take the
	// bucket's name, never its url: a gs:// bucket fails at the API (gcs rules §3).
	memberOpts := []pulumi.ResourceOption{pulumi.Parent(a), pulumi.DeleteBeforeReplace(true)}
	if cfg.Public {
		if _, err := storage.NewBucketIAMMember(ctx, "public-reader", &storage.BucketIAMMemberArgs{
			Bucket: bucket.Name, Role: pulumi.String("roles/storage.objectViewer"), Member: pulumi.String("allUsers"),
		}, memberOpts...); err != nil {
			return nil, err
		}
		a.PublicURL = pulumi.Sprintf("https://storage.googleapis.com/%s/", bucket.Name)
	}

	if cfg.Copying() {
		account, err := serviceaccount.NewAccount(ctx, "archiver", &serviceaccount.AccountArgs{
			AccountId:   pulumi.String(archiverAccountID(args.Namespace)),
			Project:     pulumi.String(args.Project),
			DisplayName: pulumi.String("loklak dumps archiver"),
			// From the bucket's output, so the account waits for the bucket: a bucket change the engine
			// refuses (a rename, a move) stops the update before anything of the archiver changes.
			Description: pulumi.Sprintf("Copies loklak's closed dump files from namespace %s into gs://%s (loklak-dumps).", args.Namespace, bucket.Name),
		}, pulumi.Parent(a))
		if err != nil {
			return nil, err
		}
		var grants []any
		for _, role := range archiverBucketRoles {
			grant, err := storage.NewBucketIAMMember(ctx, "archiver-"+role[len("roles/storage."):], &storage.BucketIAMMemberArgs{
				Bucket: bucket.Name, Role: pulumi.String(role), Member: account.Member,
			}, memberOpts...)
			if err != nil {
				return nil, err
			}
			grants = append(grants, grant.Etag)
		}
		// Workload Identity: loklak's Kubernetes service account may act as the archiver's account. The
		// account's name (projects/P/serviceAccounts/EMAIL), never its bare email, which Check refuses
		// (gcs rules §4). The workload pool exists once the cluster has Workload Identity on.
		workloadIdentity, err := serviceaccount.NewIAMMember(ctx, "archiver-workload-identity", &serviceaccount.IAMMemberArgs{
			ServiceAccountId: account.Name,
			Role:             pulumi.String("roles/iam.workloadIdentityUser"),
			Member:           pulumi.String(WorkloadIdentityMember(args.Project, args.Namespace, args.KubernetesServiceAccount)),
		}, memberOpts...)
		if err != nil {
			return nil, err
		}
		// The email once every grant exists: the Kubernetes service account and loklak's pod take it, so
		// a grant that fails (a cluster without Workload Identity: "Identity Pool does not exist") stops
		// the update before the pod restarts with an archiver that could not work.
		a.AccountEmail = pulumi.All(append([]any{account.Email, workloadIdentity.Etag}, grants...)...).ApplyT(
			func(v []any) string { return v[0].(string) }).(pulumi.StringOutput)
	}
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{
		"url": a.URL, "publicUrl": a.PublicURL, "accountEmail": a.AccountEmail,
	})
}

// WorkloadIdentityMember is the IAM principal of a Kubernetes service account under GKE's Workload
// Identity: serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA], PROJECT being the cluster's project.
func WorkloadIdentityMember(project, namespace, ksa string) string {
	return fmt.Sprintf("serviceAccount:%s.svc.id.goog[%s/%s]", project, namespace, ksa)
}

// archiverAccountID is the archiver's Google service account ID: 6 to 30 characters (gcs rules §2),
// one per namespace, so the dev and prod stacks of one project never share one. It does not follow the
// bucket: a refused rename must not have replaced the account first.
func archiverAccountID(namespace string) string {
	return "dumps-archiver-" + shortHash(namespace)
}

func retentionPolicy(cfg ArchiveConfig) storage.BucketRetentionPolicyPtrInput {
	if cfg.RetentionDays == 0 {
		return nil
	}
	// Never locked: a locked policy can never be removed or shortened, and unlocking replaces the bucket.
	return &storage.BucketRetentionPolicyArgs{RetentionPeriod: pulumi.Int(cfg.RetentionDays * 86400), IsLocked: pulumi.Bool(false)}
}

func lifecycleRules(cfg ArchiveConfig) storage.BucketLifecycleRuleArray {
	if cfg.ColdAfterDays == 0 {
		return nil
	}
	return storage.BucketLifecycleRuleArray{&storage.BucketLifecycleRuleArgs{
		Action: &storage.BucketLifecycleRuleActionArgs{Type: pulumi.String("SetStorageClass"), StorageClass: pulumi.String(cfg.ColdStorageClass)},
		Condition: &storage.BucketLifecycleRuleConditionArgs{
			Age:                   pulumi.Int(cfg.ColdAfterDays),
			MatchesStorageClasses: pulumi.StringArray{pulumi.String("STANDARD")},
		},
	}}
}
