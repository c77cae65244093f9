package kubedriver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

// Kinds in the names of claims and policies whose contract name is not a
// valid Kubernetes name (see objectName).
const (
	kindVolume  = "v"
	kindNetwork = "n"
)

// NetworkDriver is the driver name of the networks this driver makes, in
// [contract.Network]; NetworkConfig.Driver may be it or empty.
const NetworkDriver = "networkpolicy"

// removeWait bounds how long RemoveVolume waits for a deleted claim to go
// (its protection finalizer is removed once no pod uses it).
const removeWait = 30 * time.Second

// defaultClassAnnotations mark the default StorageClass.
var defaultClassAnnotations = []string{
	"storageclass.kubernetes.io/is-default-class",
	"storageclass.beta.kubernetes.io/is-default-class",
}

// CreateVolume creates a PersistentVolumeClaim: of the StorageClass
// cfg.Driver names, or of the cluster's default StorageClass when it is
// empty, requesting the volume size (see [WithVolumeSize]), ReadWriteOnce.
// A class that does not exist, or no default class, is a CONFIGURATION
// error: such a claim would stay Pending forever. The volume's ID is the
// claim's name. A name already taken is a VOLUME_CREATION error that is not
// retryable, unless a create with the same idempotency key made it, in
// which case that volume is returned.
func (d *Driver) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	const op = contract.OpCreateVolume
	if err := contract.ValidateVolumeConfig(cfg); err != nil {
		return contract.Volume{}, withOp(err, op)
	}
	if k, ok := d.keys.firstReserved(cfg.Labels); ok {
		return contract.Volume{}, newErr(op, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.keys.prefix+"/*"), nil)
	}
	if cfg.Driver != "" && !validObjectName(cfg.Driver) {
		return contract.Volume{}, newErr(op, contract.CodeConfiguration, "",
			fmt.Sprintf("volume driver %q is not a StorageClass name", cfg.Driver), nil)
	}
	if err := checkCtx(ctx, op, ""); err != nil {
		return contract.Volume{}, err
	}
	if err := d.checkStorageClass(ctx, op, cfg.Driver); err != nil {
		return contract.Volume{}, err
	}
	key, _ := contract.IdempotencyKey(ctx)
	k := d.keys
	name := objectName(kindVolume, cfg.Name)
	extra := map[string]string{}
	ann := map[string]string{k.name: cfg.Name, k.labels: encodeLabels(cfg.Labels)}
	if key != "" {
		extra[k.keyHash] = hash(key)
		ann[k.key] = key
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.ns, Labels: k.objectLabels(cfg.Labels, extra), Annotations: ann},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(d.cfg.volumeSize*mib, resource.BinarySI),
			}},
		},
	}
	if cfg.Driver != "" {
		pvc.Spec.StorageClassName = new(cfg.Driver)
	}
	for attempt := 1; ; attempt++ {
		got, err := d.core.PersistentVolumeClaims(d.ns).Create(ctx, pvc, metav1.CreateOptions{})
		if err == nil {
			return d.volumeOf(got), nil
		}
		if ctx.Err() != nil || !apierrors.IsAlreadyExists(err) {
			return contract.Volume{}, mapErr(ctx, op, name, err)
		}
		old, gerr := d.core.PersistentVolumeClaims(d.ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr) && attempt < maxCreateAttempts:
			continue
		case gerr != nil:
			return contract.Volume{}, mapErr(ctx, op, name, gerr)
		case old.DeletionTimestamp != nil && attempt < maxCreateAttempts:
			// Removed, and not gone yet: make it again once it is.
			if err := sleep(ctx, time.Second); err != nil {
				return contract.Volume{}, ctxErr(op, name, err, nil)
			}
			continue
		case key != "" && k.isManaged(old.Labels) && old.Annotations[k.key] == key:
			return d.volumeOf(old), nil
		}
		return contract.Volume{}, &contract.DriverError{
			Code:    contract.CodeVolumeCreation,
			Message: fmt.Sprintf("volume %q already exists (claim %s); choose another name or remove it first", cfg.Name, name),
			Op:      op, ID: name, Err: err,
		}
	}
}

// checkStorageClass refuses a class that does not exist, or no class when
// the cluster has no default one. When the driver may not read
// StorageClasses it does not judge.
func (d *Driver) checkStorageClass(ctx context.Context, op contract.Op, class string) error {
	if class != "" {
		_, err := d.storage.StorageClasses().Get(ctx, class, metav1.GetOptions{})
		switch {
		case err == nil, apierrors.IsForbidden(err) && ctx.Err() == nil:
			return nil
		case apierrors.IsNotFound(err) && ctx.Err() == nil:
			return newErr(op, contract.CodeConfiguration, "",
				fmt.Sprintf("the cluster has no StorageClass %q (VolumeConfig.Driver names the StorageClass; empty is the default class)", class), err)
		}
		return mapErr(ctx, op, "", err)
	}
	list, err := d.storage.StorageClasses().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err) && ctx.Err() == nil:
		return nil
	case err != nil:
		return mapErr(ctx, op, "", err)
	}
	for _, sc := range list.Items {
		for _, a := range defaultClassAnnotations {
			if sc.Annotations[a] == "true" {
				return nil
			}
		}
	}
	return newErr(op, contract.CodeConfiguration, "",
		"the cluster has no default StorageClass, so a claim without one would stay Pending: name a StorageClass in VolumeConfig.Driver", nil)
}

func (d *Driver) volumeOf(pvc *corev1.PersistentVolumeClaim) contract.Volume {
	v := contract.Volume{
		ID:        pvc.Name,
		Name:      pvc.Annotations[d.keys.name],
		CreatedAt: pvc.CreationTimestamp.Time,
		Labels:    d.keys.userLabels(pvc.Labels, pvc.Annotations),
	}
	if v.Name == "" {
		v.Name = pvc.Name
	}
	if pvc.Spec.StorageClassName != nil {
		v.Driver = *pvc.Spec.StorageClassName
	}
	return v
}

// getClaim returns one of the driver's claims by volume id or name, or
// VOLUME_NOT_FOUND; a claim being deleted counts as gone.
func (d *Driver) getClaim(ctx context.Context, op contract.Op, id string) (*corev1.PersistentVolumeClaim, error) {
	name := objectName(kindVolume, id)
	pvc, err := d.core.PersistentVolumeClaims(d.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && ctx.Err() == nil {
			return nil, newErr(op, contract.CodeVolumeNotFound, id, fmt.Sprintf("volume %q not found", id), err)
		}
		return nil, mapErr(ctx, op, id, err)
	}
	if !d.keys.isManaged(pvc.Labels) || pvc.DeletionTimestamp != nil {
		return nil, newErr(op, contract.CodeVolumeNotFound, id, fmt.Sprintf("volume %q not found among the driver's volumes", id), nil)
	}
	return pvc, nil
}

// claimOf returns the claim a container's volume mount names.
func (d *Driver) claimOf(ctx context.Context, op contract.Op, volume string) (string, error) {
	pvc, err := d.getClaim(ctx, op, volume)
	if err != nil {
		if contract.CodeOf(err) == contract.CodeVolumeNotFound {
			return "", newErr(op, contract.CodeVolumeNotFound, "",
				fmt.Sprintf("volume %q of a mount not found; create it with CreateVolume first", volume), err)
		}
		return "", err
	}
	return pvc.Name, nil
}

// RemoveVolume deletes one of the driver's claims, by ID or name, and waits
// (at most 30s) until it is gone. A claim that a pod mounts, running or
// not, is a VOLUME_REMOVE error; an unknown one, or one the driver does not
// manage, VOLUME_NOT_FOUND.
func (d *Driver) RemoveVolume(ctx context.Context, id string) error {
	const op = contract.OpRemoveVolume
	if err := checkCtx(ctx, op, id); err != nil {
		return err
	}
	pvc, err := d.getClaim(ctx, op, id)
	if err != nil {
		return err
	}
	pods, err := d.core.Pods(d.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return mapErr(ctx, op, id, err)
	}
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
				return newErr(op, contract.CodeVolumeRemove, id, fmt.Sprintf("volume is in use by pod %s", p.Name), nil)
			}
		}
	}
	uid := pvc.UID
	err = d.core.PersistentVolumeClaims(d.ns).Delete(ctx, pvc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err) && ctx.Err() == nil:
		return newErr(op, contract.CodeVolumeNotFound, id, fmt.Sprintf("volume %q not found", id), err)
	case err != nil:
		return mapErr(ctx, op, id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, removeWait)
	defer cancel()
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		cur, err := d.core.PersistentVolumeClaims(d.ns).Get(wctx, pvc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && cur.UID != uid {
			return nil
		}
		if sleep(wctx, delay) != nil {
			if ctx.Err() != nil {
				return ctxErr(op, id, ctx.Err(), nil)
			}
			return nil // deleted; its finalizer ends it when nothing uses it
		}
	}
}

// CreateNetwork creates a NetworkPolicy that selects the pods of the
// network by a label and lets them reach each other and nothing else:
// ingress only from, egress only to, pods of the network. The network's ID
// is the policy's name. cfg.Driver must be empty or "networkpolicy"; no
// options are supported. A name already taken is a NETWORK_CREATION error
// that is not retryable, unless a create with the same idempotency key made
// it, in which case that network is returned.
func (d *Driver) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	const op = contract.OpCreateNetwork
	if err := contract.ValidateNetworkConfig(cfg); err != nil {
		return contract.Network{}, withOp(err, op)
	}
	if k, ok := d.keys.firstReserved(cfg.Labels); ok {
		return contract.Network{}, newErr(op, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.keys.prefix+"/*"), nil)
	}
	if cfg.Driver != "" && cfg.Driver != NetworkDriver {
		return contract.Network{}, newErr(op, contract.CodeConfiguration, "",
			fmt.Sprintf("network driver %q is not supported: a network is a NetworkPolicy (driver %q or empty)", cfg.Driver, NetworkDriver), nil)
	}
	if len(cfg.Options) > 0 {
		return contract.Network{}, newErr(op, contract.CodeConfiguration, "", "network options are not supported on Kubernetes", nil)
	}
	if err := checkCtx(ctx, op, ""); err != nil {
		return contract.Network{}, err
	}
	key, _ := contract.IdempotencyKey(ctx)
	k := d.keys
	name := objectName(kindNetwork, cfg.Name)
	members := metav1.LabelSelector{MatchLabels: map[string]string{k.network: hash(name)}}
	extra := map[string]string{}
	ann := map[string]string{k.name: cfg.Name, k.labels: encodeLabels(cfg.Labels)}
	if key != "" {
		extra[k.keyHash] = hash(key)
		ann[k.key] = key
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.ns, Labels: k.objectLabels(cfg.Labels, extra), Annotations: ann},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: members,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &members}}}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &members}}}},
		},
	}
	got, err := d.netv1.NetworkPolicies(d.ns).Create(ctx, np, metav1.CreateOptions{})
	if err == nil {
		return d.networkOf(got), nil
	}
	if ctx.Err() != nil || !apierrors.IsAlreadyExists(err) {
		return contract.Network{}, mapErr(ctx, op, name, err)
	}
	if key != "" {
		old, gerr := d.netv1.NetworkPolicies(d.ns).Get(ctx, name, metav1.GetOptions{})
		if gerr == nil && k.isManaged(old.Labels) && old.Annotations[k.key] == key {
			return d.networkOf(old), nil
		}
	}
	return contract.Network{}, &contract.DriverError{
		Code:    contract.CodeNetworkCreation,
		Message: fmt.Sprintf("network %q already exists (policy %s); choose another name or remove it first", cfg.Name, name),
		Op:      op, ID: name, Err: err,
	}
}

func (d *Driver) networkOf(np *networkingv1.NetworkPolicy) contract.Network {
	n := contract.Network{
		ID:        np.Name,
		Name:      np.Annotations[d.keys.name],
		Driver:    NetworkDriver,
		CreatedAt: np.CreationTimestamp.Time,
		Labels:    d.keys.userLabels(np.Labels, np.Annotations),
	}
	if n.Name == "" {
		n.Name = np.Name
	}
	return n
}

// getPolicy returns one of the driver's policies by network id or name, or
// NETWORK_NOT_FOUND.
func (d *Driver) getPolicy(ctx context.Context, op contract.Op, id string) (*networkingv1.NetworkPolicy, error) {
	name := objectName(kindNetwork, id)
	np, err := d.netv1.NetworkPolicies(d.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && ctx.Err() == nil {
			return nil, newErr(op, contract.CodeNetworkNotFound, id, fmt.Sprintf("network %q not found", id), err)
		}
		return nil, mapErr(ctx, op, id, err)
	}
	if !d.keys.isManaged(np.Labels) || np.Spec.PodSelector.MatchLabels[d.keys.network] == "" {
		return nil, newErr(op, contract.CodeNetworkNotFound, id, fmt.Sprintf("network %q not found among the driver's networks", id), nil)
	}
	return np, nil
}

// networkSelector returns the label value that puts a pod into a network.
func (d *Driver) networkSelector(ctx context.Context, op contract.Op, network string) (string, error) {
	np, err := d.getPolicy(ctx, op, network)
	if err != nil {
		if contract.CodeOf(err) == contract.CodeNetworkNotFound {
			return "", newErr(op, contract.CodeNetworkNotFound, "", fmt.Sprintf("network %q not found", network), err)
		}
		return "", err
	}
	return np.Spec.PodSelector.MatchLabels[d.keys.network], nil
}

// RemoveNetwork deletes one of the driver's policies, by ID or name. A
// network a pod of the driver is in, running or not, is a NETWORK_REMOVE
// error; an unknown one, or one the driver does not manage,
// NETWORK_NOT_FOUND.
func (d *Driver) RemoveNetwork(ctx context.Context, id string) error {
	const op = contract.OpRemoveNetwork
	if err := checkCtx(ctx, op, id); err != nil {
		return err
	}
	np, err := d.getPolicy(ctx, op, id)
	if err != nil {
		return err
	}
	sel := d.keys.managedSelector() + "," + d.keys.network + "=" + np.Spec.PodSelector.MatchLabels[d.keys.network]
	pods, err := d.listPods(ctx, op, sel)
	if err != nil {
		return err
	}
	if len(pods) > 0 {
		return newErr(op, contract.CodeNetworkRemove, id, fmt.Sprintf("network is in use: pod %s is in it", pods[0].Name), nil)
	}
	uid := np.UID
	err = d.netv1.NetworkPolicies(d.ns).Delete(ctx, np.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) && ctx.Err() == nil {
		return newErr(op, contract.CodeNetworkNotFound, id, fmt.Sprintf("network %q not found", id), err)
	}
	return mapErr(ctx, op, id, err)
}
