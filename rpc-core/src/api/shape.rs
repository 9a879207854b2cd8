//! The shapes of the types an API sends, read from their serde
//! `Deserialize`: a struct's fields (and which of them a peer may leave
//! out), an enum's variants, a tuple's items.
//!
//! A type is traced by deserializing it from a reader that makes up each
//! value and writes down what was asked for, as serde-reflection does. One
//! pass explores one variant of each enum, so passes repeat until every
//! variant was seen; a value the type refuses (a `Uuid` from an empty
//! string, a `NonZeroU32` from 0) is tried again with the next sample; a
//! recursive type is read as an empty `Option`, sequence or map where it
//! recurs; and each field is left out once, to learn whether the type
//! accepts its absence (`Option`, `#[serde(default)]`). A type that still
//! cannot be read (one that reads any value: `#[serde(untagged)]`,
//! `#[serde(flatten)]`, internally tagged enums; or one refusing every
//! sample) has no shape, and is compared by name alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The shape of a named type: what its serde representation holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TypeShape {
    /// Named fields: a struct, or a struct variant.
    Struct {
        /// The fields, in declaration order.
        fields: Vec<FieldShape>,
    },
    /// Positional items: a tuple struct or variant (a newtype has one).
    Tuple {
        /// The items' types.
        items: Vec<String>,
    },
    /// Nothing: a unit struct or variant.
    Unit,
    /// Variants, each with its own shape.
    Enum {
        /// The variants, in declaration order.
        variants: Vec<VariantShape>,
    },
    /// Traced with different shapes under one name (a generic type's
    /// instances, `Page<Item>` and `Page<Order>`, or two types of one name
    /// in different modules): compared by name alone.
    Ambiguous,
}

/// One field of a struct (or of a struct variant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldShape {
    /// Its name on the wire.
    pub name: String,
    /// Its type, written as descriptions write types (`Option<String>`,
    /// `Vec<Item>`, `Map<String, u64>`; `any` for a type that reads any value).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the type accepts the field's absence (an `Option`, or a
    /// `#[serde(default)]` field): peers that do not know it may leave it out.
    #[serde(default)]
    pub optional: bool,
}

/// One variant of an enum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VariantShape {
    /// Its name on the wire.
    pub name: String,
    /// What it holds.
    pub shape: TypeShape,
}

/// How many passes a type may take before it is given up.
const PASSES: usize = 2048;

/// How deep containers may nest in one pass.
const MAX_DEPTH: usize = 128;

/// Traces `T`, adding the shape of every named type it holds to `types`
/// (a name already there keeps its shape). Returns whether it could be read.
pub(crate) fn trace<T: DeserializeOwned>(types: &mut BTreeMap<String, TypeShape>) -> bool {
    let mut tracer = Tracer::default();
    if !tracer.run_until_complete::<T>() {
        return false;
    }
    // Each field left out once, down the path of variants it was met on:
    // the type accepts its absence or not.
    let fields: Vec<(String, HashMap<&'static str, usize>)> = tracer.fields.drain().collect();
    for (field, path) in fields {
        tracer.force = path;
        tracer.omit = Some(field.clone());
        tracer.omitted = false;
        if tracer.pass::<T>().is_ok() && tracer.omitted {
            tracer.optional.insert(field);
        }
    }
    let Tracer {
        found, enums, optional, ..
    } = tracer;
    let mut shapes = found;
    for (name, variants) in enums {
        let variants = variants
            .into_iter()
            .map(|(variant, shape)| VariantShape {
                name: variant.to_owned(),
                shape: shape.unwrap_or(TypeShape::Unit),
            })
            .collect();
        shapes.insert(name.to_owned(), TypeShape::Enum { variants });
    }
    for (name, shape) in &mut shapes {
        mark_optional(name, shape, &optional);
    }
    // `Result<T, E>`, as a method's return type, is not a type of the API.
    if let Some(TypeShape::Enum { variants }) = shapes.get("Result") {
        if variants.iter().map(|variant| variant.name.as_str()).eq(["Ok", "Err"]) {
            shapes.remove("Result");
        }
    }
    for (name, shape) in shapes {
        match types.get(&name) {
            None => {
                types.insert(name, shape);
            }
            Some(known) if *known == shape || *known == TypeShape::Ambiguous => {}
            Some(_) => {
                types.insert(name, TypeShape::Ambiguous);
            }
        }
    }
    true
}

/// Marks the fields found optional, by their place (`Type.field`,
/// `Enum::Variant.field`).
fn mark_optional(name: &str, shape: &mut TypeShape, optional: &HashSet<String>) {
    match shape {
        TypeShape::Struct { fields } => {
            for field in fields {
                field.optional = optional.contains(&format!("{name}.{}", field.name));
            }
        }
        TypeShape::Enum { variants } => {
            for variant in variants {
                mark_optional(&format!("{name}::{}", variant.name), &mut variant.shape, optional);
            }
        }
        TypeShape::Tuple { .. } | TypeShape::Unit | TypeShape::Ambiguous => {}
    }
}

/// Why a pass failed.
#[derive(Debug)]
enum Failure {
    /// The type refused the sample given at this place.
    Refused { place: String, samples: usize },
    /// A type recurred here, inside itself.
    Recurred,
    /// The recursion was cut at an `Option`, sequence or map: pass again.
    Cut,
}

#[derive(Debug, Default)]
struct Tracer {
    /// The structs and tuples read so far.
    found: BTreeMap<String, TypeShape>,
    /// Each enum's variants, and the shape of those explored so far.
    enums: BTreeMap<&'static str, Vec<(&'static str, Option<TypeShape>)>>,
    /// The sample to give at a place, after earlier ones were refused.
    samples: HashMap<String, usize>,
    /// Places read as empty, with their type: where a type recurs.
    empty: HashMap<String, String>,
    /// The containers being read (what would recur).
    open: Vec<&'static str>,
    /// Every struct field's place, with the variants chosen on the way to
    /// it the first time it was met.
    fields: HashMap<String, HashMap<&'static str, usize>>,
    /// The variant chosen for each enum in this pass (outside itself).
    choices: HashMap<&'static str, usize>,
    /// The enums met in this pass, in order.
    met: Vec<&'static str>,
    /// The enums met under each variant, in any pass.
    under: HashMap<(&'static str, usize), HashSet<&'static str>>,
    /// The variants this pass must choose.
    force: HashMap<&'static str, usize>,
    /// The field this pass leaves out (its shape is not recorded then).
    omit: Option<String>,
    /// Whether this pass met the field it leaves out.
    omitted: bool,
    /// The fields whose absence their type accepts.
    optional: HashSet<String>,
    /// Why this pass failed, innermost first.
    failure: Option<Failure>,
    /// The last primitive read in this pass, and how many samples it has:
    /// blamed for a refusal made after it was read (`String::deserialize`
    /// and then a parse).
    last_read: Option<(String, usize)>,
}

impl Tracer {
    /// Passes until every enum variant was seen, recovering from what a
    /// pass can teach; false when the type cannot be read.
    fn run_until_complete<T: DeserializeOwned>(&mut self) -> bool {
        for _ in 0..PASSES {
            match self.pass::<T>() {
                Ok(()) if self.unexplored() => continue,
                Ok(()) => return true,
                Err(_) => match self.failure.take().or_else(|| {
                    let (place, samples) = self.last_read.take()?;
                    Some(Failure::Refused { place, samples })
                }) {
                    Some(Failure::Refused { place, samples }) => {
                        let next = self.samples.entry(place).or_default();
                        *next += 1;
                        if *next >= samples {
                            return false;
                        }
                    }
                    Some(Failure::Cut) => {}
                    Some(Failure::Recurred) | None => return false,
                },
            }
        }
        false
    }

    fn pass<T: DeserializeOwned>(&mut self) -> Result<(), TraceError> {
        self.choices.clear();
        self.met.clear();
        self.last_read = None;
        self.open.clear();
        self.failure = None;
        let mut shape = String::new();
        T::deserialize(Reader {
            tracer: self,
            place: String::new(),
            shape: &mut shape,
        })
        .map(drop)
    }

    fn unexplored(&self) -> bool {
        self.enums.keys().any(|name| self.incomplete(name))
    }

    /// Whether some variant of the enum `name` was not explored yet.
    fn incomplete(&self, name: &str) -> bool {
        self.enums
            .get(name)
            .is_some_and(|variants| variants.iter().any(|(_, shape)| shape.is_none()))
    }

    /// A variant of `name` explored and seen to end without `name` inside.
    fn ending_variant(&self, name: &'static str) -> Option<usize> {
        self.enums[name].iter().enumerate().position(|(index, (_, shape))| {
            shape.is_some() && !self.under.get(&(name, index)).is_some_and(|under| under.contains(name))
        })
    }

    /// The variant of `name` to explore next (outside itself): one not yet
    /// explored, else one under which an enum was not explored fully.
    fn next_variant(&self, name: &'static str) -> usize {
        let variants = self.enums.get(name).map_or(0, Vec::len);
        (0..variants)
            .find(|index| self.enums[name][*index].1.is_none())
            .or_else(|| {
                (0..variants).find(|index| {
                    self.under
                        .get(&(name, *index))
                        .is_some_and(|under| under.iter().any(|inner| self.incomplete(inner)))
                })
            })
            .unwrap_or(0)
    }

    /// Which sample to give at `place`.
    fn sample(&self, place: &str, samples: usize) -> usize {
        self.samples.get(place).copied().unwrap_or(0).min(samples - 1)
    }

    /// Records a refusal, unless one further in was recorded.
    fn refused(&mut self, place: &str, samples: usize) {
        if self.failure.is_none() {
            self.failure = Some(Failure::Refused {
                place: place.to_owned(),
                samples,
            });
        }
    }

    /// An `Option`, sequence or map at `place` whose content recurred:
    /// read it as empty from the next pass on.
    fn cut(&mut self, place: &str, shape: &str) {
        if matches!(self.failure, Some(Failure::Recurred)) {
            self.empty.insert(place.to_owned(), shape.to_owned());
            self.failure = Some(Failure::Cut);
        }
    }

    /// Records a struct's or tuple's shape, read whole.
    fn found(&mut self, name: &str, shape: TypeShape) {
        if self.omit.is_none() {
            self.found.insert(name.to_owned(), shape);
        }
    }

    /// Enters a container; fails when it recurs or nests too deep.
    fn open(&mut self, name: &'static str) -> Result<(), TraceError> {
        if self.open.contains(&name) || self.open.len() >= MAX_DEPTH {
            if self.failure.is_none() {
                self.failure = Some(Failure::Recurred);
            }
            return Err(TraceError(format!("`{name}` recurs")));
        }
        self.open.push(name);
        Ok(())
    }
}

/// Why a pass failed, as serde needs it.
#[derive(Debug)]
struct TraceError(String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(message: T) -> TraceError {
        TraceError(message.to_string())
    }
}

/// Reads one value at `place`, writing its type into `shape`.
struct Reader<'t> {
    tracer: &'t mut Tracer,
    place: String,
    shape: &'t mut String,
}

/// A primitive: the sample due at this place, and a refusal noted.
macro_rules! primitive {
    ($method:ident, $visit:ident, $name:literal, [$($sample:expr),+ $(,)?]) => {
        primitive!($method, $visit, $name, [$($sample),+].into_iter());
    };
    ($method:ident, $visit:ident, $name:literal, $samples:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            let samples: Vec<_> = $samples.collect();
            let count = samples.len();
            *self.shape = $name.to_owned();
            let pick = self.tracer.sample(&self.place, count);
            let value = samples.into_iter().nth(pick).unwrap_or_default();
            let read = visitor.$visit(value);
            if read.is_err() {
                self.tracer.refused(&self.place, count);
            }
            self.tracer.last_read = Some((self.place, count));
            read
        }
    };
}

/// Strings that types reading text commonly accept: identifiers, times,
/// addresses, numbers.
const TEXT_SAMPLES: [&str; 9] = [
    "",
    "00000000-0000-0000-0000-000000000000",
    "1970-01-01T00:00:00Z",
    "127.0.0.1",
    "127.0.0.1:1",
    "http://localhost/",
    "0",
    "a",
    "1s",
];

impl<'de> de::Deserializer<'de> for Reader<'_> {
    type Error = TraceError;

    primitive!(deserialize_bool, visit_bool, "bool", [false, true]);
    primitive!(deserialize_i8, visit_i8, "i8", [0, 1]);
    primitive!(deserialize_i16, visit_i16, "i16", [0, 1]);
    primitive!(deserialize_i32, visit_i32, "i32", [0, 1]);
    primitive!(deserialize_i64, visit_i64, "i64", [0, 1]);
    primitive!(deserialize_i128, visit_i128, "i128", [0, 1]);
    primitive!(deserialize_u8, visit_u8, "u8", [0, 1]);
    primitive!(deserialize_u16, visit_u16, "u16", [0, 1]);
    primitive!(deserialize_u32, visit_u32, "u32", [0, 1]);
    primitive!(deserialize_u64, visit_u64, "u64", [0, 1]);
    primitive!(deserialize_u128, visit_u128, "u128", [0, 1]);
    primitive!(deserialize_f32, visit_f32, "f32", [0.0, 1.0]);
    primitive!(deserialize_f64, visit_f64, "f64", [0.0, 1.0]);
    primitive!(deserialize_char, visit_char, "char", ['a']);
    primitive!(
        deserialize_str,
        visit_string,
        "String",
        TEXT_SAMPLES.iter().map(|text| (*text).to_owned())
    );
    primitive!(
        deserialize_string,
        visit_string,
        "String",
        TEXT_SAMPLES.iter().map(|text| (*text).to_owned())
    );
    primitive!(
        deserialize_identifier,
        visit_string,
        "String",
        TEXT_SAMPLES.iter().map(|text| (*text).to_owned())
    );
    primitive!(deserialize_bytes, visit_byte_buf, "Bytes", [Vec::new(), vec![0; 16]]);
    primitive!(deserialize_byte_buf, visit_byte_buf, "Bytes", [Vec::new(), vec![0; 16]]);

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        // A type that reads any value (`serde_json::Value`): nothing to tell.
        *self.shape = "any".to_owned();
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.shape = "()".to_owned();
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        if let Some(shape) = self.tracer.empty.get(&self.place) {
            *self.shape = shape.clone();
            return visitor.visit_none();
        }
        let mut inner = String::new();
        let read = visitor.visit_some(Reader {
            tracer: &mut *self.tracer,
            place: format!("{}?", self.place),
            shape: &mut inner,
        });
        *self.shape = format!("Option<{inner}>");
        if read.is_err() {
            self.tracer.cut(&self.place, self.shape);
        }
        read
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        if let Some(shape) = self.tracer.empty.get(&self.place) {
            *self.shape = shape.clone();
            return visitor.visit_seq(Items::empty(self.tracer));
        }
        let mut items = vec![String::new()];
        let read = visitor.visit_seq(Items::new(
            &mut *self.tracer,
            format!("{}[]", self.place),
            &mut items,
            false,
        ));
        *self.shape = format!("Vec<{}>", items[0]);
        if read.is_err() {
            self.tracer.cut(&self.place, self.shape);
        }
        read
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        if let Some(shape) = self.tracer.empty.get(&self.place) {
            *self.shape = shape.clone();
            return visitor.visit_map(Entry::empty(self.tracer));
        }
        let (mut key, mut value) = (String::new(), String::new());
        let read = visitor.visit_map(Entry {
            tracer: &mut *self.tracer,
            place: Some(&self.place),
            shapes: Some((&mut key, &mut value)),
        });
        *self.shape = format!("Map<{key}, {value}>");
        if read.is_err() {
            self.tracer.cut(&self.place, self.shape);
        }
        read
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, TraceError> {
        let mut items = vec![String::new(); len];
        let read = visitor.visit_seq(Items::new(self.tracer, self.place, &mut items, true));
        *self.shape = match items.as_slice() {
            [one] => format!("({one},)"),
            items => format!("({})", items.join(", ")),
        };
        read
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        *self.shape = name.to_owned();
        self.tracer.found(name, TypeShape::Unit);
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.shape = name.to_owned();
        self.tracer.open(name)?;
        let mut inner = String::new();
        let read = visitor.visit_newtype_struct(Reader {
            tracer: &mut *self.tracer,
            place: format!("{name}.0"),
            shape: &mut inner,
        });
        self.tracer.open.pop();
        if read.is_ok() {
            self.tracer.found(name, TypeShape::Tuple { items: vec![inner] });
        }
        read
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.shape = name.to_owned();
        self.tracer.open(name)?;
        let mut items = vec![String::new(); len];
        let read = visitor.visit_seq(Items::new(&mut *self.tracer, name.to_owned(), &mut items, true));
        self.tracer.open.pop();
        if read.is_ok() {
            self.tracer.found(name, TypeShape::Tuple { items });
        }
        read
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.shape = name.to_owned();
        self.tracer.open(name)?;
        let mut shapes = vec![String::new(); fields.len()];
        let read = visitor.visit_map(Fields::new(&mut *self.tracer, name.to_owned(), fields, &mut shapes));
        self.tracer.open.pop();
        if read.is_ok() {
            self.tracer.found(
                name,
                TypeShape::Struct {
                    fields: field_shapes(fields, shapes),
                },
            );
        }
        read
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.shape = name.to_owned();
        let Some(first) = variants.first() else {
            return Err(TraceError(format!("`{name}` has no variants")));
        };
        let nesting = self.tracer.open.iter().filter(|open| **open == name).count();
        self.tracer
            .enums
            .entry(name)
            .or_insert_with(|| variants.iter().map(|variant| (*variant, None)).collect());
        self.tracer.met.push(name);
        // Outside itself, the variant forced or the next to explore; inside
        // itself, one known to end (or, before any is, a later one each level).
        let index = if nesting == 0 {
            let index = match self.tracer.force.get(name) {
                Some(forced) => *forced,
                None => self.tracer.next_variant(name),
            };
            self.tracer.choices.insert(name, index);
            index
        } else {
            self.tracer
                .ending_variant(name)
                .unwrap_or(nesting.min(variants.len() - 1))
        };
        let met_before = self.tracer.met.len();
        if self.tracer.open.len() >= MAX_DEPTH {
            self.tracer.failure.get_or_insert(Failure::Recurred);
            return Err(TraceError(format!("`{name}` recurs")));
        }
        self.tracer.open.push(name);
        let variant = variants.get(index).unwrap_or(first);
        let mut content = None;
        let read = visitor.visit_enum(Variant {
            tracer: &mut *self.tracer,
            place: format!("{name}::{variant}"),
            variant,
            content: &mut content,
        });
        self.tracer.open.pop();
        let met_under: Vec<&'static str> = self.tracer.met[met_before..].to_vec();
        self.tracer.under.entry((name, index)).or_default().extend(met_under);
        if let (Ok(_), Some(content), None) = (&read, content, &self.tracer.omit) {
            if let Some(slot) = self
                .tracer
                .enums
                .get_mut(name)
                .and_then(|explored| explored.get_mut(index))
            {
                slot.1 = Some(content);
            }
        }
        read
    }

    fn is_human_readable(&self) -> bool {
        // Types with two forms (addresses, ids, times) show their text one.
        true
    }
}

fn field_shapes(fields: &[&str], shapes: Vec<String>) -> Vec<FieldShape> {
    fields
        .iter()
        .zip(shapes)
        .map(|(name, ty)| FieldShape {
            name: (*name).to_owned(),
            ty,
            optional: false,
        })
        .collect()
}

/// The items of a sequence (one, to learn its element's type) or a tuple.
struct Items<'t> {
    tracer: &'t mut Tracer,
    place: String,
    shapes: Option<&'t mut [String]>,
    next: usize,
    /// Tuples number their items' places; a sequence's one item has its own.
    numbered: bool,
}

impl<'t> Items<'t> {
    fn new(tracer: &'t mut Tracer, place: String, shapes: &'t mut [String], numbered: bool) -> Items<'t> {
        Items {
            tracer,
            place,
            shapes: Some(shapes),
            next: 0,
            numbered,
        }
    }

    fn empty(tracer: &'t mut Tracer) -> Items<'t> {
        Items {
            tracer,
            place: String::new(),
            shapes: None,
            next: 0,
            numbered: false,
        }
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, TraceError> {
        let Some(shape) = self.shapes.as_deref_mut().and_then(|shapes| shapes.get_mut(self.next)) else {
            return Ok(None);
        };
        let place = if self.numbered {
            format!("{}.{}", self.place, self.next)
        } else {
            self.place.clone()
        };
        self.next += 1;
        seed.deserialize(Reader {
            tracer: &mut *self.tracer,
            place,
            shape,
        })
        .map(Some)
    }
}

/// One entry of a map, to learn its key's and value's types.
struct Entry<'t> {
    tracer: &'t mut Tracer,
    /// `None` once the entry was read (or for an empty map).
    place: Option<&'t str>,
    /// Where the key's and the value's types go.
    shapes: Option<(&'t mut String, &'t mut String)>,
}

impl<'t> Entry<'t> {
    fn empty(tracer: &'t mut Tracer) -> Entry<'t> {
        Entry {
            tracer,
            place: None,
            shapes: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Entry<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        let (Some(place), Some((key, _))) = (self.place, self.shapes.as_mut()) else {
            return Ok(None);
        };
        seed.deserialize(Reader {
            tracer: &mut *self.tracer,
            place: format!("{place}{{key}}"),
            shape: key,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        let place = self.place.take().unwrap_or_default();
        let Some((_, value)) = self.shapes.as_mut() else {
            return Err(TraceError("a value without its key".to_owned()));
        };
        seed.deserialize(Reader {
            tracer: &mut *self.tracer,
            place: format!("{place}{{value}}"),
            shape: value,
        })
    }
}

/// A struct's fields, by name; the one the pass leaves out is skipped.
struct Fields<'t> {
    tracer: &'t mut Tracer,
    container: String,
    fields: &'static [&'static str],
    shapes: &'t mut [String],
    next: usize,
}

impl<'t> Fields<'t> {
    fn new(
        tracer: &'t mut Tracer,
        container: String,
        fields: &'static [&'static str],
        shapes: &'t mut [String],
    ) -> Fields<'t> {
        Fields {
            tracer,
            container,
            fields,
            shapes,
            next: 0,
        }
    }

    fn place(&self, field: &str) -> String {
        format!("{}.{field}", self.container)
    }
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        loop {
            let Some(field) = self.fields.get(self.next) else {
                return Ok(None);
            };
            let place = self.place(field);
            if self.tracer.omit.as_deref() == Some(place.as_str()) {
                self.tracer.omitted = true;
                self.next += 1;
                continue;
            }
            if self.tracer.omit.is_none() && !self.tracer.fields.contains_key(&place) {
                let path = self.tracer.choices.clone();
                self.tracer.fields.insert(place, path);
            }
            let key: StrDeserializer<'_, TraceError> = field.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        let index = self.next;
        self.next += 1;
        let place = self
            .fields
            .get(index)
            .map(|field| self.place(field))
            .unwrap_or_default();
        let Some(shape) = self.shapes.get_mut(index) else {
            return Err(TraceError("a value without its field".to_owned()));
        };
        seed.deserialize(Reader {
            tracer: &mut *self.tracer,
            place,
            shape,
        })
    }
}

/// The variant a pass explores.
struct Variant<'t> {
    tracer: &'t mut Tracer,
    place: String,
    variant: &'static str,
    content: &'t mut Option<TypeShape>,
}

impl<'de, 't> de::EnumAccess<'de> for Variant<'t> {
    type Error = TraceError;
    type Variant = Variant<'t>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Variant<'t>), TraceError> {
        let name: StrDeserializer<'_, TraceError> = self.variant.into_deserializer();
        let value = seed.deserialize(name)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        *self.content = Some(TypeShape::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, TraceError> {
        let mut inner = String::new();
        let read = seed.deserialize(Reader {
            tracer: &mut *self.tracer,
            place: self.place,
            shape: &mut inner,
        })?;
        *self.content = Some(TypeShape::Tuple { items: vec![inner] });
        Ok(read)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, TraceError> {
        let mut items = vec![String::new(); len];
        let read = visitor.visit_seq(Items::new(self.tracer, self.place, &mut items, true))?;
        *self.content = Some(TypeShape::Tuple { items });
        Ok(read)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut shapes = vec![String::new(); fields.len()];
        let read = visitor.visit_map(Fields::new(self.tracer, self.place, fields, &mut shapes))?;
        *self.content = Some(TypeShape::Struct {
            fields: field_shapes(fields, shapes),
        });
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::num::NonZeroU32;

    use super::*;

    fn traced<T: DeserializeOwned>() -> BTreeMap<String, TypeShape> {
        let mut types = BTreeMap::new();
        assert!(trace::<T>(&mut types), "{}", std::any::type_name::<T>());
        types
    }

    fn field(name: &str, ty: &str, optional: bool) -> FieldShape {
        FieldShape {
            name: name.to_owned(),
            ty: ty.to_owned(),
            optional,
        }
    }

    fn fields(types: &BTreeMap<String, TypeShape>, name: &str) -> Vec<FieldShape> {
        match &types[name] {
            TypeShape::Struct { fields } => fields.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    /// Refuses any text but a UUID's, as `uuid::Uuid` does.
    #[derive(Debug)]
    struct Uuid;

    impl<'de> Deserialize<'de> for Uuid {
        fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
            let text = String::deserialize(deserializer)?;
            if text.len() == 36 && text.matches('-').count() == 4 {
                Ok(Uuid)
            } else {
                Err(de::Error::custom("not a UUID"))
            }
        }
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Item {
        sku: String,
        id: Uuid,
        count: NonZeroU32,
        location: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        stock: HashMap<String, u64>,
        kind: Kind,
        pair: (u8, Bin),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Bin(u32);

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Kind {
        Plain,
        Boxed(u16),
        Pallet(u8, u8),
        Crate {
            size: u32,
            #[serde(default)]
            note: String,
        },
    }

    #[test]
    fn structs_enums_and_tuples_show_their_fields_and_variants() {
        let types = traced::<Item>();
        assert_eq!(
            fields(&types, "Item"),
            [
                field("sku", "String", false),
                field("id", "String", false),
                field("count", "u32", false),
                field("location", "Option<String>", true),
                field("tags", "Vec<String>", true),
                field("stock", "Map<String, u64>", false),
                field("kind", "Kind", false),
                field("pair", "(u8, Bin)", false),
            ]
        );
        assert_eq!(
            types["Bin"],
            TypeShape::Tuple {
                items: vec!["u32".into()]
            }
        );
        let TypeShape::Enum { variants } = &types["Kind"] else {
            panic!("{:?}", types["Kind"]);
        };
        let variants: Vec<(&str, &TypeShape)> = variants.iter().map(|v| (v.name.as_str(), &v.shape)).collect();
        assert_eq!(
            variants,
            [
                ("Plain", &TypeShape::Unit),
                (
                    "Boxed",
                    &TypeShape::Tuple {
                        items: vec!["u16".into()]
                    }
                ),
                (
                    "Pallet",
                    &TypeShape::Tuple {
                        items: vec!["u8".into(), "u8".into()]
                    }
                ),
                (
                    "Crate",
                    &TypeShape::Struct {
                        fields: vec![field("size", "u32", false), field("note", "String", true)]
                    }
                ),
            ]
        );
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Tree {
        name: String,
        children: Vec<Tree>,
        parent: Option<Box<Tree>>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Holder {
        list: List,
        nested: Outer,
    }

    /// An enum reached only through another enum's second variant.
    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Outer {
        Nothing,
        Wrapped(Inner),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Inner {
        required: u8,
        maybe: Option<u8>,
    }

    #[test]
    fn recursive_and_nested_types_are_traced() {
        let types = traced::<Tree>();
        assert_eq!(
            fields(&types, "Tree"),
            [
                field("name", "String", false),
                field("children", "Vec<Tree>", false),
                field("parent", "Option<Tree>", true),
            ]
        );
        let types = traced::<Holder>();
        assert!(
            matches!(&types["List"], TypeShape::Enum { variants } if variants.len() == 2),
            "{types:?}"
        );
        // Its fields were left out down the path that reaches them.
        assert_eq!(
            fields(&types, "Inner"),
            [field("required", "u8", false), field("maybe", "Option<u8>", true)]
        );
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Loose {
        extra: serde_json::Value,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }

    #[test]
    fn what_reads_any_value_is_any_or_untraced() {
        assert_eq!(fields(&traced::<Loose>(), "Loose"), [field("extra", "any", false)]);
        let mut types = BTreeMap::new();
        assert!(!trace::<Either>(&mut types));
        assert!(types.is_empty());
        // Plain types hold no named type.
        assert!(traced::<Vec<Option<String>>>().is_empty());
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Page<T> {
        items: Vec<T>,
    }

    #[test]
    fn a_name_traced_with_two_shapes_is_ambiguous() {
        let mut types = BTreeMap::new();
        assert!(trace::<Page<u32>>(&mut types));
        assert!(trace::<Page<u32>>(&mut types));
        assert!(matches!(types["Page"], TypeShape::Struct { .. }), "{types:?}");
        assert!(trace::<Page<String>>(&mut types));
        assert_eq!(types["Page"], TypeShape::Ambiguous);
        assert!(trace::<Page<u32>>(&mut types));
        assert_eq!(types["Page"], TypeShape::Ambiguous);
    }

    #[test]
    fn a_methods_result_type_is_not_a_type_of_its_api() {
        let types = traced::<Result<Bin, Kind>>();
        assert!(!types.contains_key("Result"), "{types:?}");
        assert!(types.contains_key("Bin") && types.contains_key("Kind"), "{types:?}");
    }
}
