"""IKEv1 with provider defaults, AES-128 IPsec and a PSK typed in the program (NET-008, STO-004)."""
import pulumi_openstack as openstack

ike = openstack.vpnaas.IkePolicy("legacy-ike", name="legacy-ike")
ipsec = openstack.vpnaas.IpSecPolicy("legacy-ipsec", name="legacy-ipsec", encryption_algorithm="aes-128",
                                     auth_algorithm="sha1", pfs="group5")
router = openstack.networking.Router("edge", name="edge")
service = openstack.vpnaas.Service("vpn", router_id=router.id)
openstack.vpnaas.SiteConnection(
    "site-nord", ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id, vpnservice_id=service.id,
    peer_address="192.0.2.10", peer_id="192.0.2.10", peer_cidrs=["10.60.0.0/16"], psk="ChuNord-2019")
