//! The script side of `Objects`, the list `load` returns: it behaves like an array of maps.
//! Length, indexing, `for`, `filter`, `map`, `+`, `+=` and the host functions that take objects
//! work on it directly, item by item; every other array function (`sort`, `retain`, `find`,
//! …) runs on the array of its maps and, when it changes the list, stores the result.

use std::any::TypeId;

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, INT, Map, NativeCallContext,
    Position, RhaiNativeFunc, Variant,
};

use super::HostResult;
use super::manifest::{identity_of, masked_for_printing, set_cluster_namespace};
use crate::cluster::Cluster;
use crate::session::convert::Objects;

/// Rhai's names for the indexer functions (`objects[i]` and `objects[i] = v`).
const FN_IDX_GET: &str = "index$get$";
const FN_IDX_SET: &str = "index$set$";

/// Array functions run on the array of the list's maps: name, arguments besides the list,
/// and whether the function changes the list (then the changed array is stored back).
const ARRAY_FUNCTIONS: &[(&str, usize, bool)] = &[
    ("get", 1, false),
    ("contains", 1, false),
    ("index_of", 1, false),
    ("index_of", 2, false),
    ("find", 1, false),
    ("find", 2, false),
    ("find_map", 1, false),
    ("find_map", 2, false),
    ("some", 1, false),
    ("all", 1, false),
    ("reduce", 1, false),
    ("reduce", 2, false),
    ("reduce_rev", 1, false),
    ("reduce_rev", 2, false),
    ("zip", 2, false),
    ("order", 0, false),
    ("order", 1, false),
    ("order_by", 1, false),
    ("order_desc", 0, false),
    ("extract", 1, false),
    ("extract", 2, false),
    ("set", 2, true),
    ("insert", 2, true),
    ("pad", 2, true),
    ("pop", 0, true),
    ("shift", 0, true),
    ("remove", 1, true),
    ("clear", 0, true),
    ("truncate", 1, true),
    ("chop", 1, true),
    ("reverse", 0, true),
    ("splice", 2, true),
    ("splice", 3, true),
    ("split", 1, true),
    ("for_each", 1, true),
    ("dedup", 0, true),
    ("dedup", 1, true),
    ("sort", 0, true),
    ("sort", 1, true),
    ("sort_by", 1, true),
    ("sort_desc", 0, true),
    ("drain", 1, true),
    ("drain", 2, true),
    ("retain", 1, true),
    ("retain", 2, true),
];

/// Registers the `Objects` type and everything scripts do with it.
pub fn register_types(engine: &mut Engine) {
    // Under Rhai's fast operators `array += value` pushes `value` whole before any registered
    // function is asked, so `all += load(file)` would add one item; without them the `+=`
    // below runs (the other operators already ask registered functions first for host types).
    engine.set_fast_operators(false);
    engine
        .register_type_with_name::<Objects>("Objects")
        .register_iterator::<Objects>()
        .register_get("len", |o: &mut Objects| o.len() as INT)
        .register_get("is_empty", |o: &mut Objects| o.is_empty());
    register(engine, "len", |o: &mut Objects| o.len() as INT);
    register(engine, "is_empty", |o: &mut Objects| o.is_empty());
    register(engine, FN_IDX_GET, |o: &mut Objects, index: INT| {
        let position = position(o, index)?;
        Ok::<_, Box<EvalAltResult>>(o.get(position).unwrap_or_default())
    });
    register(
        engine,
        FN_IDX_SET,
        |o: &mut Objects, index: INT, value: Dynamic| {
            let position = position(o, index)?;
            o.set(position, value);
            Ok::<_, Box<EvalAltResult>>(())
        },
    );
    register(engine, "to_array", |o: &mut Objects| o.to_array());
    register(engine, "filter", filter);
    register(engine, "map", map);
    register(
        engine,
        "+",
        |ctx: NativeCallContext, a: Objects, b: Objects| joined(&ctx, a, b),
    );
    register(
        engine,
        "+",
        |ctx: NativeCallContext, a: Objects, b: Array| joined(&ctx, a, Objects::from_array(b)),
    );
    register(
        engine,
        "+",
        |ctx: NativeCallContext, a: Array, b: Objects| joined(&ctx, Objects::from_array(a), b),
    );
    for name in ["+=", "append"] {
        register(
            engine,
            name,
            |ctx: NativeCallContext, a: &mut Objects, b: Objects| {
                *a = joined(&ctx, std::mem::take(a), b)?;
                Ok::<_, Box<EvalAltResult>>(())
            },
        );
        register(
            engine,
            name,
            |ctx: NativeCallContext, a: &mut Objects, b: Array| {
                *a = joined(&ctx, std::mem::take(a), Objects::from_array(b))?;
                Ok::<_, Box<EvalAltResult>>(())
            },
        );
        register(
            engine,
            name,
            |ctx: NativeCallContext, a: &mut Array, b: Objects| {
                within_limit(&ctx, a.len() + b.len())?;
                a.extend(b);
                Ok::<_, Box<EvalAltResult>>(())
            },
        );
    }
    for name in ["+=", "push"] {
        register(
            engine,
            name,
            |ctx: NativeCallContext, a: &mut Objects, item: Dynamic| {
                within_limit(&ctx, a.len() + 1)?;
                a.push(item);
                Ok::<_, Box<EvalAltResult>>(())
            },
        );
    }
    for (name, same) in [("==", true), ("!=", false)] {
        register(
            engine,
            name,
            move |ctx: NativeCallContext, a: Objects, b: Objects| {
                equals(&ctx, a.to_array(), b.to_array()).map(|equal| equal == same)
            },
        );
        register(
            engine,
            name,
            move |ctx: NativeCallContext, a: Objects, b: Array| {
                equals(&ctx, a.to_array(), b).map(|equal| equal == same)
            },
        );
        register(
            engine,
            name,
            move |ctx: NativeCallContext, a: Array, b: Objects| {
                equals(&ctx, a, b.to_array()).map(|equal| equal == same)
            },
        );
    }
    for name in ["to_string", "to_debug", "print", "debug"] {
        register(engine, name, |o: &mut Objects| {
            masked_for_printing(Dynamic::from_array(o.to_array())).to_string()
        });
    }
    register_host_overloads(engine);
    for &(name, arguments, changes) in ARRAY_FUNCTIONS {
        match arguments {
            0 => register(
                engine,
                name,
                move |ctx: NativeCallContext, o: &mut Objects| {
                    on_array(&ctx, name, o, vec![], changes)
                },
            ),
            1 => register(
                engine,
                name,
                move |ctx: NativeCallContext, o: &mut Objects, a: Dynamic| {
                    on_array(&ctx, name, o, vec![a], changes)
                },
            ),
            2 => register(
                engine,
                name,
                move |ctx: NativeCallContext, o: &mut Objects, a: Dynamic, b: Dynamic| {
                    on_array(&ctx, name, o, vec![a, b], changes)
                },
            ),
            _ => register(
                engine,
                name,
                move |ctx: NativeCallContext,
                      o: &mut Objects,
                      a: Dynamic,
                      b: Dynamic,
                      c: Dynamic| {
                    on_array(&ctx, name, o, vec![a, b, c], changes)
                },
            ),
        }
    }
}

/// `Engine::register_fn` with the return type recorded as scripts see it: for a function
/// returning `Result<T, _>` Rhai records a type its editor definitions print as
/// `EvalAltResult>>`.
fn register<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    function: FUNC,
) where
    FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let mut types: Vec<String> = FUNC::param_names()
        .iter()
        .map(|rust| format!("{}: {rust}", parameter_name(rust)))
        .collect();
    if TypeId::of::<R>() != TypeId::of::<()>() {
        types.push(std::any::type_name::<R>().to_string());
    }
    FuncRegistration::new(name)
        .with_params_info(types)
        .register_into_engine(engine, function);
}

/// A parameter's name in signatures, from its type (`objects: Objects`).
fn parameter_name(rust_type: &str) -> &'static str {
    let is = |suffix: &str| rust_type.trim_end_matches('>').ends_with(suffix);
    if is("Objects") {
        "objects"
    } else if rust_type.contains("Vec<") {
        "array"
    } else if rust_type.contains("BTreeMap<") {
        "map"
    } else if is("Cluster") {
        "cluster"
    } else if is("FnPtr") {
        "function"
    } else if is("str") {
        "text"
    } else if is("i64") {
        "index"
    } else {
        "value"
    }
}

/// The host functions that take an array of objects, for `Objects` too (documented with the
/// array form; the reference lists that one).
fn register_host_overloads(engine: &mut Engine) {
    register(
        engine,
        "select",
        |objects: Objects, filter: Map| -> HostResult<Objects> {
            let filter = super::manifest::select_filter(&filter)?;
            objects.retained(|_, object| Ok(filter.matches(&identity_of(&object))))
        },
    );
    register(
        engine,
        "set_namespace",
        |objects: &mut Objects, namespace: &str| -> HostResult<()> {
            objects.update_each(|object| set_cluster_namespace(object, namespace))
        },
    );
    register(
        engine,
        "delete",
        |ctx: NativeCallContext, cluster: &mut Cluster, objects: Objects| {
            call_with_array(&ctx, "delete", cluster, objects, None)
        },
    );
    register(
        engine,
        "delete",
        |ctx: NativeCallContext, cluster: &mut Cluster, objects: Objects, settings: Map| {
            call_with_array(&ctx, "delete", cluster, objects, Some(settings))
        },
    );
    register(
        engine,
        "table",
        |ctx: NativeCallContext, rows: Objects, columns: Array| -> HostResult<Dynamic> {
            ctx.call_native_fn("table", (rows.to_array(), columns))
        },
    );
}

/// `cluster.function(array[, settings])` with the list's maps.
fn call_with_array(
    ctx: &NativeCallContext,
    function: &str,
    cluster: &mut Cluster,
    objects: Objects,
    settings: Option<Map>,
) -> HostResult<Dynamic> {
    let mut cluster = Dynamic::from(cluster.clone());
    let mut array = Dynamic::from_array(objects.to_array());
    let mut settings = settings.map(Dynamic::from_map);
    let mut arguments = vec![&mut cluster, &mut array];
    arguments.extend(settings.as_mut());
    ctx.call_native_fn_raw(function, true, &mut arguments)
}

/// A position in the list from an index that may count from the end, as arrays take it.
fn position(objects: &Objects, index: INT) -> HostResult<usize> {
    let len = objects.len();
    let position = if index < 0 {
        len.checked_sub(index.unsigned_abs() as usize)
    } else {
        Some(index as usize).filter(|&p| p < len)
    };
    position.ok_or_else(|| EvalAltResult::ErrorArrayBounds(len, index, Position::NONE).into())
}

fn joined(ctx: &NativeCallContext, mut a: Objects, b: Objects) -> HostResult<Objects> {
    within_limit(ctx, a.len() + b.len())?;
    a.append(b);
    Ok(a)
}

/// The engine's limit on array sizes holds for lists too (Rhai checks arrays only).
fn within_limit(ctx: &NativeCallContext, len: usize) -> HostResult<()> {
    let max = ctx.engine().max_array_size();
    if max > 0 && len > max {
        return Err(
            EvalAltResult::ErrorDataTooLarge("Size of array".into(), Position::NONE).into(),
        );
    }
    Ok(())
}

/// `filter` as arrays have it (the closure gets the item and, if it asks, the index), keeping
/// the items compact.
fn filter(ctx: NativeCallContext, objects: &mut Objects, keep: FnPtr) -> HostResult<Objects> {
    objects.retained(|index, mut item| {
        let index: Dynamic = (index as INT).into();
        Ok(keep
            .call_raw_with_extra_args("filter", &ctx, Some(&mut item), [], [index], Some(0))?
            .as_bool()
            .unwrap_or(false))
    })
}

/// `map` as arrays have it, converting one item at a time.
fn map(ctx: NativeCallContext, objects: &mut Objects, change: FnPtr) -> HostResult<Array> {
    let mut mapped = Array::with_capacity(objects.len());
    for (index, mut item) in objects.iter().enumerate() {
        let index: Dynamic = (index as INT).into();
        mapped.push(change.call_raw_with_extra_args(
            "map",
            &ctx,
            Some(&mut item),
            [],
            [index],
            Some(0),
        )?);
    }
    Ok(mapped)
}

fn equals(ctx: &NativeCallContext, a: Array, b: Array) -> HostResult<bool> {
    ctx.call_native_fn("==", (a, b))
}

/// Runs an array function on the list's maps; stores the array back when it `changes` it.
fn on_array(
    ctx: &NativeCallContext,
    name: &str,
    objects: &mut Objects,
    mut arguments: Vec<Dynamic>,
    changes: bool,
) -> HostResult<Dynamic> {
    let mut array = Dynamic::from_array(objects.to_array());
    let mut all: Vec<&mut Dynamic> = std::iter::once(&mut array)
        .chain(arguments.iter_mut())
        .collect();
    let result = ctx.call_native_fn_raw(name, true, &mut all)?;
    if changes {
        *objects = Objects::from_array(array.into_array().unwrap_or_default());
    }
    Ok(result)
}
