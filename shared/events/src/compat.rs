//! Wire compatibility of the schemas against the committed snapshot
//! `proto/descriptor.snapshot.binpb`. A change that breaks readers of old events (a field number
//! reused with another type or cardinality, a field or enum value removed without reserving its
//! number, a message removed) fails here. After an intended, compatible change, refresh the
//! snapshot with `make proto-snapshot`.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/descriptor.snapshot.binpb");

fn messages(set: &FileDescriptorSet) -> BTreeMap<String, &DescriptorProto> {
    let mut out = BTreeMap::new();
    fn walk<'a>(prefix: &str, msgs: &'a [DescriptorProto], out: &mut BTreeMap<String, &'a DescriptorProto>) {
        for m in msgs {
            let name = format!("{prefix}.{}", m.name());
            walk(&name, &m.nested_type, out);
            out.insert(name, m);
        }
    }
    for f in &set.file {
        walk(f.package(), &f.message_type, &mut out);
    }
    out
}

fn enums(set: &FileDescriptorSet) -> BTreeMap<String, &EnumDescriptorProto> {
    let mut out = BTreeMap::new();
    for f in &set.file {
        for e in &f.enum_type {
            out.insert(format!("{}.{}", f.package(), e.name()), e);
        }
        for (name, m) in messages(set) {
            if name.starts_with(f.package()) {
                for e in &m.enum_type {
                    out.insert(format!("{name}.{}", e.name()), e);
                }
            }
        }
    }
    out
}

fn reserved(m: &DescriptorProto, number: i32) -> bool {
    m.reserved_range.iter().any(|r| (r.start()..r.end()).contains(&number))
}

/// Wire class of a field type: types in one class share an encoding a reader can accept.
fn wire_class(t: Type) -> &'static str {
    match t {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => "varint",
        Type::Sint32 | Type::Sint64 => "zigzag",
        Type::Fixed32 | Type::Sfixed32 | Type::Float => "i32",
        Type::Fixed64 | Type::Sfixed64 | Type::Double => "i64",
        Type::String | Type::Bytes => "len",
        Type::Message => "message",
        Type::Group => "group",
    }
}

/// Lists every incompatibility of `new` against `old`.
pub fn incompatibilities(old: &FileDescriptorSet, new: &FileDescriptorSet) -> Vec<String> {
    let mut out = Vec::new();
    let new_msgs = messages(new);
    for (name, old_m) in messages(old) {
        let Some(new_m) = new_msgs.get(&name) else {
            out.push(format!("message {name} was removed"));
            continue;
        };
        for of in &old_m.field {
            match new_m.field.iter().find(|nf| nf.number() == of.number()) {
                None if reserved(new_m, of.number()) => {}
                None => out.push(format!(
                    "{name}.{} (#{}) was removed without reserving its number",
                    of.name(),
                    of.number()
                )),
                Some(nf) => {
                    if wire_class(nf.r#type()) != wire_class(of.r#type()) {
                        out.push(format!(
                            "{name} field #{} changed type {:?} -> {:?}",
                            of.number(),
                            of.r#type(),
                            nf.r#type()
                        ));
                    } else if nf.r#type() == Type::Message && nf.type_name() != of.type_name() {
                        out.push(format!(
                            "{name} field #{} changed message type {} -> {}",
                            of.number(),
                            of.type_name(),
                            nf.type_name()
                        ));
                    }
                    if nf.label() != of.label() {
                        out.push(format!("{name} field #{} changed cardinality", of.number()));
                    }
                }
            }
        }
    }
    let new_enums = enums(new);
    for (name, old_e) in enums(old) {
        let Some(new_e) = new_enums.get(&name) else {
            out.push(format!("enum {name} was removed"));
            continue;
        };
        for ov in &old_e.value {
            let kept = new_e.value.iter().any(|nv| nv.number() == ov.number());
            let reserved = new_e.reserved_range.iter().any(|r| (r.start()..=r.end()).contains(&ov.number()));
            if !kept && !reserved {
                out.push(format!("{name}.{} (= {}) was removed without reserving it", ov.name(), ov.number()));
            }
        }
    }
    out
}

fn current() -> FileDescriptorSet {
    FileDescriptorSet::decode(crate::DESCRIPTOR_SET).unwrap()
}

#[test]
fn wire_compatibility_with_the_committed_snapshot() {
    if std::env::var_os("UPDATE_PROTO_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT, crate::DESCRIPTOR_SET).unwrap();
        return;
    }
    let bytes = std::fs::read(SNAPSHOT).unwrap_or_else(|e| panic!("{SNAPSHOT}: {e}; run `make proto-snapshot`"));
    let old = FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let problems = incompatibilities(&old, &current());
    assert!(problems.is_empty(), "wire-incompatible schema change:\n{}", problems.join("\n"));
}

#[test]
fn the_check_catches_a_retyped_field_and_a_removed_value() {
    let old = current();
    let mut new = old.clone();
    let file = new.file.iter_mut().find(|f| f.package() == "platform.v1").unwrap();
    let envelope = file.message_type.iter_mut().find(|m| m.name() == "Envelope").unwrap();
    let field = envelope.field.iter_mut().find(|f| f.number() == 4).unwrap();
    field.set_type(Type::String);
    let catalog = new.file.iter_mut().find(|f| f.package() == "platform.catalog.v1").unwrap();
    let open = catalog.enum_type.iter_mut().find(|e| e.name() == "OpenCategory").unwrap();
    open.value.retain(|v| v.number() != 3);
    let found = incompatibilities(&old, &new);
    assert!(found.iter().any(|p| p.contains("Envelope field #4 changed type")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("OPEN_CATEGORY_NOT_OPEN")), "{found:?}");
}

#[test]
fn removing_a_field_is_fine_once_its_number_is_reserved() {
    let old = current();
    let mut new = old.clone();
    let file = new.file.iter_mut().find(|f| f.package() == "platform.v1").unwrap();
    let envelope = file.message_type.iter_mut().find(|m| m.name() == "Envelope").unwrap();
    envelope.field.retain(|f| f.number() != 6);
    let mut reserved_too = new.clone();
    assert_eq!(incompatibilities(&old, &new).len(), 1);
    let file = reserved_too.file.iter_mut().find(|f| f.package() == "platform.v1").unwrap();
    let envelope = file.message_type.iter_mut().find(|m| m.name() == "Envelope").unwrap();
    envelope.reserved_range.push(prost_types::descriptor_proto::ReservedRange { start: Some(6), end: Some(7) });
    assert!(incompatibilities(&old, &reserved_too).is_empty());
}
