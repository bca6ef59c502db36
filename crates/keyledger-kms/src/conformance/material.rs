//! Conformance checks on key material, the data-key envelope, rotation,
//! zeroization, isolation and concurrency (see the parent module).

use crate::hsm::{HsmBackend, HsmError, KeyBinding, MasterKeyStatus, WrappedMaterial, ceremony};
use crate::secret::SecretBytes;

use super::{binding, dek, instance, load_master_key, random_part, ready_instance, seal, status};

// ---- key material ----

pub fn check_sealed_instance_refuses_key_operations(hsm: &dyn HsmBackend) {
    // Material made in a loaded instance, then the instance zeroized: the
    // same state as after a software-HSM restart.
    let (inst, _) = ready_instance(hsm, "sealed");
    let b = binding(&inst, "k", 1, 1);
    let material = hsm.generate_key(&b, 32).expect("generate");
    let w = material.wrapped.clone();
    let ct = hsm.encrypt(&b, &w, &dek(), b"aad").expect("encrypt");
    hsm.zeroize(&inst).expect("zeroize");
    let never = instance("never-loaded");
    for name in [inst.as_str(), never.as_str()] {
        let b = binding(name, "k", 1, 1);
        let sealed = Some(HsmError::Sealed(name.to_string()));
        assert_eq!(hsm.generate_key(&b, 32).err(), sealed, "generate");
        assert_eq!(hsm.import_key(&b, &dek()).err(), sealed, "import");
        assert_eq!(hsm.export_key(&b, &w).err(), sealed, "export");
        assert_eq!(hsm.rewrap_material(&b, &w, 2).err(), sealed, "rewrap");
        assert_eq!(hsm.encrypt(&b, &w, &dek(), b"aad").err(), sealed, "encrypt");
        assert_eq!(hsm.decrypt(&b, &w, &ct, b"aad").err(), sealed, "decrypt");
    }
}

pub fn check_generate_import_export_and_kcv(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "material");
    let b = binding(&inst, "gen", 1, 1);
    let generated = hsm.generate_key(&b, 32).expect("generate");
    assert_eq!(generated.wrapped.mk_generation, 1);
    let exported = hsm.export_key(&b, &generated.wrapped).expect("export");
    assert_eq!(exported.len(), 32);
    assert_eq!(generated.kcv, ceremony::kcv(exported.expose()));
    let second = hsm
        .generate_key(&binding(&inst, "gen2", 1, 1), 32)
        .expect("generate");
    assert_ne!(second.wrapped.blob, generated.wrapped.blob);

    // NIST ECBKeySbox256 COUNT 0: AES-256(key, 0^16) starts 46f2fb.
    let key = hex::decode("c47b0294dbbbee0fec4757f22ffeee3587ca4730c3d33b691df38bab076bc558")
        .expect("hex");
    let material = SecretBytes::new(key);
    let ib = binding(&inst, "imported", 1, 1);
    let imported = hsm.import_key(&ib, &material).expect("import");
    assert_eq!(imported.kcv, "46f2fb");
    assert_eq!(imported.kcv, ceremony::kcv(material.expose()));
    assert_eq!(
        hsm.export_key(&ib, &imported.wrapped).expect("export"),
        material
    );
    // The wrapped material never contains the key in clear.
    let blob = &imported.wrapped.blob;
    assert!(!blob.windows(32).any(|w| w == material.expose()));
    // Only under the current master key's generation.
    assert!(
        hsm.generate_key(&binding(&inst, "g", 1, 2), 32).is_err(),
        "generation 2 is not current"
    );
}

pub fn check_encrypt_decrypt_round_trip(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "envelope");
    let b = binding(&inst, "k", 1, 1);
    let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
    for len in [0usize, 1, 16, 32, 33, 64, 1000] {
        let pt = SecretBytes::random(len).expect("rng");
        for aad in [&b""[..], b"tenant=42;key=k", &[0u8; 300][..]] {
            let ct = hsm.encrypt(&b, &w, &pt, aad).expect("encrypt");
            assert_eq!(ct.len(), 12 + len + 16, "nonce || ciphertext || tag");
            assert_eq!(hsm.decrypt(&b, &w, &ct, aad).expect("decrypt"), pt);
        }
    }
    let pt = dek();
    let a = hsm.encrypt(&b, &w, &pt, b"x").expect("encrypt");
    let c = hsm.encrypt(&b, &w, &pt, b"x").expect("encrypt");
    assert_ne!(a, c, "random nonces");
    assert_ne!(a[..12], c[..12]);
}

pub fn check_envelope_tampering_fails_closed(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "tamper");
    let b = binding(&inst, "k", 1, 1);
    let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
    let aad = b"tenant=7".to_vec();
    let ct = hsm.encrypt(&b, &w, &dek(), &aad).expect("encrypt");
    for i in 0..ct.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = ct.clone();
            bad[i] ^= flip;
            assert_eq!(
                hsm.decrypt(&b, &w, &bad, &aad).err(),
                Some(HsmError::Decrypt),
                "byte {i} ^ {flip:#x}"
            );
        }
    }
    for len in 0..ct.len() {
        assert_eq!(
            hsm.decrypt(&b, &w, &ct[..len], &aad).err(),
            Some(HsmError::Decrypt),
            "truncated to {len}"
        );
    }
    let mut longer = ct.clone();
    longer.push(0);
    assert_eq!(
        hsm.decrypt(&b, &w, &longer, &aad).err(),
        Some(HsmError::Decrypt),
        "extended"
    );
    // Every single-byte change of the wrapped material.
    for i in 0..w.blob.len() {
        let mut bad = w.clone();
        bad.blob[i] ^= 0x01;
        assert_eq!(
            hsm.decrypt(&b, &bad, &ct, &aad).err(),
            Some(HsmError::Decrypt),
            "wrapped byte {i}"
        );
    }
}

pub fn check_other_aad_binding_instance_generation_fail(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "binding");
    let (other_inst, _) = ready_instance(hsm, "binding-other");
    let b = binding(&inst, "k", 1, 1);
    let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
    let aad = b"tenant=7".to_vec();
    let ct = hsm.encrypt(&b, &w, &dek(), &aad).expect("encrypt");
    let decrypt_err = Some(HsmError::Decrypt);
    for other in [&b""[..], b"tenant=8", b"tenant=7\0", b"tenant="] {
        assert_eq!(
            hsm.decrypt(&b, &w, &ct, other).err(),
            decrypt_err,
            "aad {other:?}"
        );
    }
    let others = [
        binding(&inst, "k2", 1, 1),
        binding(&inst, "K", 1, 1),
        binding(&inst, "k", 2, 1),
        binding(&other_inst, "k", 1, 1),
    ];
    for ob in &others {
        assert_eq!(hsm.decrypt(ob, &w, &ct, &aad).err(), decrypt_err, "{ob:?}");
        assert_eq!(
            hsm.encrypt(ob, &w, &dek(), &aad).err(),
            decrypt_err,
            "{ob:?}"
        );
        assert_eq!(hsm.export_key(ob, &w).err(), decrypt_err, "{ob:?}");
    }
    // Another key version's material cannot open this ciphertext.
    let w2 = hsm
        .generate_key(&binding(&inst, "k", 2, 1), 32)
        .expect("generate")
        .wrapped;
    assert_eq!(
        hsm.decrypt(&binding(&inst, "k", 2, 1), &w2, &ct, &aad)
            .err(),
        decrypt_err
    );
    // Other generation: with generation 2 loaded, gen-1 material under a gen-2 binding.
    load_master_key(hsm, &inst, 2, &[random_part(), random_part()]);
    let b2 = binding(&inst, "k", 1, 2);
    assert_eq!(
        hsm.decrypt(&b2, &w, &ct, &aad).err(),
        decrypt_err,
        "binding generation 2"
    );
    let relabelled = WrappedMaterial {
        mk_generation: 2,
        blob: w.blob.clone(),
    };
    assert_eq!(
        hsm.decrypt(&b2, &relabelled, &ct, &aad).err(),
        decrypt_err,
        "relabelled material"
    );
    assert_eq!(
        hsm.decrypt(&b, &relabelled, &ct, &aad).err(),
        decrypt_err,
        "mismatched labels"
    );
    // The genuine triple still works.
    hsm.decrypt(&b, &w, &ct, &aad).expect("genuine");
}

pub fn check_master_key_rotation(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "rotate");
    let b1 = binding(&inst, "k", 1, 1);
    let w1 = hsm.generate_key(&b1, 32).expect("generate").wrapped;
    let exported = hsm.export_key(&b1, &w1).expect("export");
    let pt = dek();
    let ct = hsm.encrypt(&b1, &w1, &pt, b"aad").expect("encrypt");

    let vp2 = load_master_key(
        hsm,
        &inst,
        2,
        &[random_part(), random_part(), random_part()],
    );
    assert_eq!(status(hsm, &inst).current, Some((2, vp2)));
    assert!(
        hsm.ceremony_public_key(&inst, 1)
            .and_then(|_| {
                let p = seal(hsm, &inst, 1, "late", &random_part());
                hsm.load_part(&inst, 1, "late", &p)
            })
            .is_err(),
        "an older generation cannot be loaded again"
    );
    // Old material still works until re-wrapped and retired.
    assert_eq!(
        hsm.decrypt(&b1, &w1, &ct, b"aad")
            .expect("old still loaded"),
        pt
    );
    let w2 = hsm.rewrap_material(&b1, &w1, 2).expect("rewrap");
    assert_eq!(w2.mk_generation, 2);
    let b2 = binding(&inst, "k", 1, 2);
    assert_eq!(
        hsm.export_key(&b2, &w2).expect("export"),
        exported,
        "same material"
    );
    assert_eq!(
        hsm.decrypt(&b2, &w2, &ct, b"aad")
            .expect("old ciphertext, rewrapped material"),
        pt
    );
    // New material is made under generation 2 only.
    assert!(hsm.generate_key(&binding(&inst, "n", 1, 1), 32).is_err());
    hsm.generate_key(&binding(&inst, "n", 1, 2), 32)
        .expect("generate under gen 2");

    assert!(
        hsm.retire(&inst, 2).is_err(),
        "the current master key cannot be retired"
    );
    hsm.retire(&inst, 1).expect("retire");
    let gone = hsm.decrypt(&b1, &w1, &ct, b"aad").err();
    assert!(
        matches!(gone, Some(HsmError::Sealed(_) | HsmError::Decrypt)),
        "{gone:?}"
    );
    assert!(hsm.export_key(&b1, &w1).is_err());
    assert!(hsm.rewrap_material(&b1, &w1, 2).is_err());
    assert_eq!(
        hsm.decrypt(&b2, &w2, &ct, b"aad")
            .expect("rewrapped survives"),
        pt
    );
}

pub fn check_zeroize_and_reload(hsm: &dyn HsmBackend) {
    let (inst, parts) = ready_instance(hsm, "zeroize");
    let vp = status(hsm, &inst).current.expect("current").1;
    let b = binding(&inst, "k", 1, 1);
    let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
    let pt = dek();
    let ct = hsm.encrypt(&b, &w, &pt, b"").expect("encrypt");
    hsm.zeroize(&inst).expect("zeroize");
    assert_eq!(status(hsm, &inst), MasterKeyStatus::default());
    assert_eq!(
        hsm.decrypt(&b, &w, &ct, b"").err(),
        Some(HsmError::Sealed(inst.clone()))
    );
    // The key owners resubmit the same parts: same master key, same VP,
    // and everything wrapped before opens again.
    assert_eq!(load_master_key(hsm, &inst, 1, &parts), vp);
    assert_eq!(hsm.decrypt(&b, &w, &ct, b"").expect("after reload"), pt);
    // Other parts make another master key, under which nothing opens.
    hsm.zeroize(&inst).expect("zeroize");
    load_master_key(hsm, &inst, 1, &[random_part(), random_part()]);
    assert_eq!(hsm.decrypt(&b, &w, &ct, b"").err(), Some(HsmError::Decrypt));
}

pub fn check_instance_isolation(hsm: &dyn HsmBackend) {
    let (a, _) = ready_instance(hsm, "iso-a");
    let (b, _) = ready_instance(hsm, "iso-b");
    assert_ne!(status(hsm, &a).current, status(hsm, &b).current);
    let ba = binding(&a, "k", 1, 1);
    let wa = hsm.generate_key(&ba, 32).expect("generate").wrapped;
    let ct = hsm.encrypt(&ba, &wa, &dek(), b"").expect("encrypt");
    // Same key id under the other instance: the other master key does not open it.
    let bb = binding(&b, "k", 1, 1);
    assert_eq!(
        hsm.decrypt(&bb, &wa, &ct, b"").err(),
        Some(HsmError::Decrypt)
    );
    hsm.zeroize(&b).expect("zeroize b");
    hsm.decrypt(&ba, &wa, &ct, b"").expect("a unaffected");
    assert!(status(hsm, &a).current.is_some());
}

pub fn check_concurrency(hsm: &dyn HsmBackend) {
    let (inst, _) = ready_instance(hsm, "threads");
    let keys: Vec<(KeyBinding, WrappedMaterial)> = (0..3)
        .map(|i| {
            let b = binding(&inst, &format!("k{i}"), 1, 1);
            let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
            (b, w)
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let keys = &keys;
            s.spawn(move || {
                for n in 0..150usize {
                    let (b, w) = &keys[(t + n) % keys.len()];
                    let pt = dek();
                    let aad = format!("thread {t} op {n}");
                    let ct = hsm.encrypt(b, w, &pt, aad.as_bytes()).expect("encrypt");
                    assert_eq!(hsm.decrypt(b, w, &ct, aad.as_bytes()).expect("decrypt"), pt);
                }
            });
        }
        s.spawn(|| {
            for n in 0..20 {
                let b = binding(&inst, &format!("new{n}"), 1, 1);
                let w = hsm.generate_key(&b, 32).expect("generate").wrapped;
                hsm.export_key(&b, &w).expect("export");
            }
        });
    });
}

pub fn check_random(hsm: &dyn HsmBackend) {
    assert!(!hsm.kind().is_empty());
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    hsm.random(&mut a).expect("random");
    hsm.random(&mut b).expect("random");
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 32]);
}
