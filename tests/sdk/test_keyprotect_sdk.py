"""IBM's official Key Protect Python SDK (keyprotect==3.0.1, pinned in
scripts/test) against a running `keyledger serve --dev`.

Environment: KP_URL (service URL), KP_INSTANCE (bluemix-instance),
KP_CREDENTIALS (path of DATA_DIR/dev-credentials.json, tokens per role).
The SDK is pointed at the server with `set_service_url` and authenticates
with ibm-cloud-sdk-core's BearerTokenAuthenticator (no IAM).

Every SDK method except the KMIP ones (keyledger has no KMIP adapter) is
called; each check asserts status, media type and body. Bodies typed with
Key Protect's vendor media types come back from the SDK core as raw
`requests` responses (it decodes only application/json), as with IBM's
service, so `body()` decodes them.
"""

import base64
import json
import os
import unittest
import uuid

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from keyprotect import IbmKeyProtectApiV2

URL = os.environ["KP_URL"]
INSTANCE = os.environ["KP_INSTANCE"]
with open(os.environ["KP_CREDENTIALS"], encoding="utf-8") as f:
    TOKENS = json.load(f)["tokens"]

KEY_MEDIA = "application/vnd.ibm.kms.key+json"
ERROR_MEDIA = "application/vnd.ibm.kms.error+json"


def client(role):
    c = IbmKeyProtectApiV2(authenticator=BearerTokenAuthenticator(TOKENS[role]))
    c.set_service_url(URL)
    return c


def body(resp):
    """The decoded body of a DetailedResponse."""
    result = resp.get_result()
    if isinstance(result, requests.Response):
        return result.json()
    return result


def media(resp):
    return resp.get_headers().get("content-type", "").split(";")[0]


def key_body(name, **extra):
    resource = {"type": KEY_MEDIA, "name": name}
    resource.update(extra)
    return {
        "metadata": {"collectionType": KEY_MEDIA, "collectionTotal": 1},
        "resources": [resource],
    }


class KeyProtectSdk(unittest.TestCase):
    """Numbered so they run in order: later steps use earlier keys."""

    kp = None
    state = {}

    @classmethod
    def setUpClass(cls):
        cls.kp = client("manager")

    def error_code(self, cm):
        e = cm.exception
        self.assertEqual(
            e.http_response.headers["content-type"].split(";")[0], ERROR_MEDIA
        )
        return e.http_response.json()["resources"][0]["reasons"][0]["code"]

    def create(self, name, **extra):
        r = self.kp.create_key(INSTANCE, key_body(name, **extra))
        self.assertEqual(r.get_status_code(), 201)
        self.assertEqual(media(r), KEY_MEDIA)
        b = body(r)
        self.assertEqual(b["metadata"]["collectionTotal"], 1)
        return b["resources"][0]

    def test_01_create_and_get(self):
        root = self.create("sdk-root", extractable=False, aliases=["sdk-root-alias"])
        self.assertFalse(root["extractable"])
        self.assertEqual(root["state"], 1)
        std = self.create("sdk-standard", extractable=True)
        self.state["root"], self.state["std"] = root["id"], std["id"]
        r = self.kp.get_key(std["id"], INSTANCE)
        self.assertEqual(r.get_status_code(), 200)
        self.assertEqual(len(base64.b64decode(body(r)["resources"][0]["payload"])), 32)
        by_alias = body(self.kp.get_key("sdk-root-alias", INSTANCE))["resources"][0]
        self.assertEqual(by_alias["id"], root["id"])
        with self.assertRaises(ApiException) as cm:
            self.kp.get_key(str(uuid.uuid4()), INSTANCE)
        self.assertEqual(cm.exception.status_code, 404)
        self.assertEqual(self.error_code(cm), "KEY_NOT_FOUND_ERR")

    def test_02_create_with_policy_overrides(self):
        b = key_body(
            "sdk-overrides",
            extractable=False,
            rotation={"enabled": True, "interval_month": 3},
            dualAuthDelete={"enabled": False},
        )
        r = self.kp.create_key_with_policies_overrides(INSTANCE, b)
        self.assertEqual(r.get_status_code(), 201)
        key = body(r)["resources"][0]
        self.assertEqual(key["rotation"], {"enabled": True, "interval_month": 3})
        self.state["overrides"] = key["id"]

    def test_03_list_head_and_metadata(self):
        r = self.kp.get_keys(INSTANCE, limit=1, offset=0, extractable=False, sort="-creationDate")
        b = body(r)
        self.assertEqual(r.get_status_code(), 200)
        self.assertEqual(b["metadata"]["collectionTotal"], 1)
        self.assertFalse(b["resources"][0]["extractable"])
        searched = body(self.kp.get_keys(INSTANCE, search="sdk-standard"))
        self.assertEqual([k["id"] for k in searched["resources"]], [self.state["std"]])
        by_state = body(self.kp.get_keys(INSTANCE, state=[1], extractable=True))
        self.assertIn(self.state["std"], [k["id"] for k in by_state["resources"]])
        head = self.kp.get_key_collection_metadata(INSTANCE, state=[1])
        self.assertEqual(head.get_status_code(), 200)
        self.assertGreaterEqual(int(head.get_headers()["key-total"]), 3)
        meta = body(self.kp.get_key_metadata(self.state["std"], INSTANCE))["resources"][0]
        self.assertNotIn("payload", meta)
        with self.assertRaises(ApiException) as cm:
            self.kp.get_keys(INSTANCE, limit=0)
        self.assertEqual(self.error_code(cm), "INVALID_QUERY_PARAM_ERR")

    def test_03b_list_filter(self):
        # The SDK's `filter` argument; it also sends `state=` (empty), which
        # is no second state.
        roots = body(
            self.kp.get_keys(
                INSTANCE,
                search="sdk-",
                filter="extractable=false lastRotateDate=none state=1",
            )
        )
        self.assertEqual(
            sorted(k["id"] for k in roots["resources"]),
            sorted([self.state["root"], self.state["overrides"]]),
        )
        meta = body(self.kp.get_key_metadata(self.state["std"], INSTANCE))["resources"][0]
        same_time = f'creationDate="{meta["creationDate"]}" extractable=TRUE'
        by_date = body(self.kp.get_keys(INSTANCE, filter=same_time))
        self.assertEqual([k["id"] for k in by_date["resources"]], [self.state["std"]])
        head = self.kp.get_key_collection_metadata(INSTANCE, filter=same_time)
        self.assertEqual(head.get_headers()["key-total"], "1")
        with self.assertRaises(ApiException) as cm:
            self.kp.get_keys(INSTANCE, extractable=True, filter="extractable=true")
        self.assertEqual(cm.exception.status_code, 400)
        self.assertEqual(self.error_code(cm), "INVALID_QUERY_PARAM_ERR")
        with self.assertRaises(ApiException) as cm:
            self.kp.get_keys(INSTANCE, filter='creationDate=lt:2022-02-15T00:00:00Z')
        self.assertEqual(self.error_code(cm), "INVALID_QUERY_PARAM_ERR")

    def test_04_wrap_unwrap_rewrap_rotate_versions(self):
        root = self.state["root"]
        plaintext = base64.b64encode(b"sdk data key").decode()
        w = body(self.kp.wrap_key(root, INSTANCE, key_action_wrap_body={"plaintext": plaintext, "aad": ["sdk"]}))
        u = body(self.kp.unwrap_key(root, INSTANCE, {"ciphertext": w["ciphertext"], "aad": ["sdk"]}))
        self.assertEqual(u["plaintext"], plaintext)
        with self.assertRaises(ApiException) as cm:
            self.kp.unwrap_key(root, INSTANCE, {"ciphertext": w["ciphertext"], "aad": ["other"]})
        self.assertEqual(cm.exception.status_code, 422)
        self.assertEqual(self.error_code(cm), "UNPROCESSABLE_CIPHERTEXT_ERR")
        r = self.kp.rotate_key(root, INSTANCE)
        self.assertEqual(r.get_status_code(), 204)
        rw = body(self.kp.rewrap_key(root, INSTANCE, {"ciphertext": w["ciphertext"], "aad": ["sdk"]}))
        self.assertNotEqual(rw["keyVersion"]["id"], rw["rewrappedKeyVersion"]["id"])
        generated = body(self.kp.wrap_key(root, INSTANCE))
        self.assertEqual(len(base64.b64decode(generated["plaintext"])), 32)
        versions = body(self.kp.get_key_versions(root, INSTANCE, total_count=True))
        self.assertEqual(versions["metadata"]["totalCount"], 2)
        self.assertEqual(len(versions["resources"]), 2)

    def test_05_deprecated_action_form(self):
        root = self.state["root"]
        plaintext = base64.b64encode(b"old form").decode()
        w = body(self.kp.action_on_key(root, INSTANCE, "wrap", {"plaintext": plaintext}))
        u = body(self.kp.action_on_key(root, INSTANCE, "unwrap", {"ciphertext": w["ciphertext"]}))
        self.assertEqual(u["plaintext"], plaintext)

    def test_06_enable_disable_sync(self):
        root, std = self.state["root"], self.state["std"]
        self.assertEqual(self.kp.disable_key(root, INSTANCE).get_status_code(), 204)
        meta = body(self.kp.get_key_metadata(root, INSTANCE))["resources"][0]
        self.assertEqual(meta["state"], 2)
        with self.assertRaises(ApiException) as cm:
            self.kp.disable_key(root, INSTANCE)
        self.assertEqual(cm.exception.status_code, 409)
        self.assertEqual(self.kp.enable_key(root, INSTANCE).get_status_code(), 204)
        # Only root keys are disabled (Key Protect: KEY_ROOT_REQ_ERR).
        with self.assertRaises(ApiException) as cm:
            self.kp.disable_key(std, INSTANCE)
        self.assertEqual(cm.exception.status_code, 400)
        self.assertEqual(self.error_code(cm), "KEY_ROOT_REQ_ERR")
        self.assertEqual(self.kp.sync_associated_resources(std, INSTANCE).get_status_code(), 204)

    def test_07_key_policies(self):
        root = self.state["root"]
        put = {
            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.policy+json", "rotation": {"enabled": True, "interval_month": 6}}],
        }
        r = self.kp.put_policy(root, INSTANCE, put, policy="rotation")
        self.assertEqual(r.get_status_code(), 200)
        got = body(self.kp.get_policy(root, INSTANCE, policy="rotation"))
        self.assertEqual(got["resources"][0]["rotation"], {"enabled": True, "interval_month": 6})
        both = body(self.kp.get_policy(root, INSTANCE))
        self.assertEqual(both["metadata"]["collectionTotal"], 2)
        put["resources"][0]["rotation"]["interval_month"] = 13
        with self.assertRaises(ApiException) as cm:
            self.kp.put_policy(root, INSTANCE, put, policy="rotation")
        self.assertEqual(cm.exception.status_code, 400)

    def test_08_instance_policies(self):
        got = self.kp.get_instance_policy(INSTANCE)
        self.assertEqual(got.get_status_code(), 200)
        self.assertEqual(body(got)["metadata"]["collectionType"], "application/vnd.ibm.kms.policy+json")
        put = {
            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
            "resources": [{"policy_type": "dualAuthDelete", "policy_data": {"enabled": True}}],
        }
        with self.assertRaises(ApiException) as cm:
            self.kp.put_instance_policy(INSTANCE, put, policy="dualAuthDelete")
        self.assertEqual(cm.exception.status_code, 403)
        self.assertIn("administrator command", cm.exception.http_response.text)
        ports = body(self.kp.get_allowed_ip_port(INSTANCE))
        self.assertEqual(ports["metadata"]["collectionTotal"], len(ports["resources"]))

    def test_09_import_token_and_secure_import(self):
        r = self.kp.post_import_token(INSTANCE, expiration=600, max_allowed_retrievals=2)
        self.assertEqual(r.get_status_code(), 201)
        self.assertEqual(body(r)["remainingRetrievals"], 2)
        token = body(self.kp.get_import_token(INSTANCE))
        self.assertEqual(token["remainingRetrievals"], 1)
        public = serialization.load_pem_public_key(base64.b64decode(token["payload"]))
        key = AESGCM.generate_key(bit_length=256)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        iv = os.urandom(12)
        nonce = AESGCM(key).encrypt(iv, base64.b64decode(token["nonce"]), None)
        imported = self.create(
            "sdk-secure-import",
            extractable=False,
            payload=base64.b64encode(public.encrypt(key, oaep)).decode(),
            encryptedNonce=base64.b64encode(nonce).decode(),
            iv=base64.b64encode(iv).decode(),
            encryptionAlgorithm="RSAES_OAEP_SHA_256",
        )
        self.assertTrue(imported["imported"])
        bad_iv = base64.b64encode(os.urandom(12)).decode()
        with self.assertRaises(ApiException) as cm:
            self.create(
                "sdk-bad-import",
                extractable=False,
                payload=base64.b64encode(public.encrypt(key, oaep)).decode(),
                encryptedNonce=base64.b64encode(nonce).decode(),
                iv=bad_iv,
            )
        self.assertEqual(cm.exception.status_code, 400)

    def test_10_aliases(self):
        std = self.state["std"]
        r = self.kp.create_key_alias(std, "sdk-alias", INSTANCE)
        self.assertEqual(r.get_status_code(), 201)
        self.assertEqual(body(r)["resources"][0]["alias"], "sdk-alias")
        with self.assertRaises(ApiException) as cm:
            self.kp.create_key_alias(self.state["root"], "sdk-alias", INSTANCE)
        self.assertEqual(self.error_code(cm), "KEY_ALIAS_NOT_UNIQUE_ERR")
        self.assertEqual(self.kp.delete_key_alias(std, "sdk-alias", INSTANCE).get_status_code(), 204)
        with self.assertRaises(ApiException) as cm:
            self.kp.get_key("sdk-alias", INSTANCE)
        self.assertEqual(cm.exception.status_code, 404)

    def test_11_key_rings_and_patch(self):
        self.assertEqual(self.kp.create_key_ring("sdk-ring", INSTANCE).get_status_code(), 201)
        rings = body(self.kp.list_key_rings(INSTANCE, total_count=True))
        self.assertIn("sdk-ring", [r["id"] for r in rings["resources"]])
        self.assertEqual(rings["metadata"]["totalCount"], len(rings["resources"]))
        std = self.state["std"]
        moved = body(self.kp.patch_key(std, INSTANCE, key_patch_body={"keyRingID": "sdk-ring"}))
        self.assertEqual(moved["resources"][0]["keyRingID"], "sdk-ring")
        in_ring = body(self.kp.get_keys(INSTANCE, x_kms_key_ring="sdk-ring"))
        self.assertEqual([k["id"] for k in in_ring["resources"]], [std])
        with self.assertRaises(ApiException) as cm:
            self.kp.delete_key_ring("sdk-ring", INSTANCE)
        self.assertEqual(self.error_code(cm), "KEY_RING_NOT_EMPTY_ERR")
        self.kp.patch_key(std, INSTANCE, key_patch_body={"keyRingID": "default"})
        self.assertEqual(self.kp.delete_key_ring("sdk-ring", INSTANCE).get_status_code(), 204)

    def test_12_registrations(self):
        one = self.kp.get_registrations(self.state["root"], INSTANCE, total_count=True)
        self.assertEqual(body(one)["metadata"]["totalCount"], 0)
        everything = body(self.kp.get_registrations_all_keys(INSTANCE))
        self.assertEqual(everything["resources"], [])

    def test_13_dual_auth_and_delete_purge_restore(self):
        std = self.state["std"]
        dual = {
            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.policy+json", "dualAuthDelete": {"enabled": True}}],
        }
        self.kp.put_policy(std, INSTANCE, dual, policy="dualAuthDelete")
        self.assertEqual(self.kp.set_key_for_deletion(std, INSTANCE).get_status_code(), 204)
        with self.assertRaises(ApiException) as cm:
            self.kp.delete_key(std, INSTANCE)
        self.assertEqual(self.error_code(cm), "AUTHORIZATIONS_NOT_MET")
        self.assertEqual(self.kp.unset_key_for_deletion(std, INSTANCE).get_status_code(), 204)
        # A key's dual authorisation cannot be reverted once enabled.
        dual["resources"][0]["dualAuthDelete"]["enabled"] = False
        with self.assertRaises(ApiException) as cm:
            self.kp.put_policy(std, INSTANCE, dual, policy="dualAuthDelete")
        self.assertEqual(cm.exception.status_code, 409)
        self.assertEqual(self.error_code(cm), "KEY_ACTION_INVALID_STATE_ERR")
        # Two managers: one authorises the deletion, the other deletes.
        second = client("manager2")
        self.assertEqual(second.set_key_for_deletion(std, INSTANCE).get_status_code(), 204)
        r = self.kp.delete_key(std, INSTANCE, prefer="return=representation")
        self.assertEqual(r.get_status_code(), 200)
        self.assertEqual(body(r)["resources"][0]["state"], 5)
        with self.assertRaises(ApiException) as cm:
            self.kp.purge_key(std, INSTANCE)
        self.assertEqual(cm.exception.status_code, 409)
        r = self.kp.restore_key(std, INSTANCE)
        self.assertEqual(r.get_status_code(), 201)
        self.assertEqual(body(r)["resources"][0]["state"], 1)
        force = self.kp.delete_key(self.state["overrides"], INSTANCE, force=True, prefer="return=minimal")
        self.assertEqual(force.get_status_code(), 204)

    def test_14_roles(self):
        reader = client("reader")
        self.assertEqual(reader.get_keys(INSTANCE).get_status_code(), 200)
        with self.assertRaises(ApiException) as cm:
            reader.create_key(INSTANCE, key_body("sdk-denied"))
        self.assertEqual(cm.exception.status_code, 403)
        stranger = IbmKeyProtectApiV2(authenticator=BearerTokenAuthenticator("not-a-token"))
        stranger.set_service_url(URL)
        with self.assertRaises(ApiException) as cm:
            stranger.get_keys(INSTANCE)
        self.assertEqual(cm.exception.status_code, 401)
        self.assertEqual(self.error_code(cm), "UNAUTHORIZED_ERR")


if __name__ == "__main__":
    unittest.main(verbosity=2)
