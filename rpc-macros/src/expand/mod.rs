//! Code generation: one function per emitted item, listed in order by
//! `Generator`'s `ToTokens`.

mod client;
pub(crate) mod dispatch;
pub(crate) mod item;
pub(crate) mod wire;

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, quote};
use syn::Visibility;

use crate::ctxt::{self, Ctxt};
use crate::model::{Endpoint, Kind, Method};
use crate::{args, input, model, names, validate};

/// Expands `#[endpoint(attr)] item`. On error, the user's item is still
/// emitted (without our attributes), followed by every error found.
pub(crate) fn endpoint(attr: TokenStream, item: TokenStream) -> TokenStream {
    let input = match input::parse(item.clone()) {
        Ok(input) => input,
        Err(error) => return ctxt::unparsed(item, error),
    };
    let cx = Ctxt::new();
    let args = args::parse_endpoint_args(&cx, attr);
    let endpoint = model::lower(&cx, &input, args);
    validate::validate(&cx, &endpoint);
    cx.finish(
        || {
            let name = endpoint.name.as_ref()?;
            Some(Generator::new(&endpoint, name).into_token_stream())
        },
        || item::stripped(&input),
    )
}

/// Borrowed, precomputed names for one endpoint's expansion.
pub(crate) struct Generator<'a> {
    endpoint: &'a Endpoint<'a>,
    name: &'a Ident,
    root: &'a TokenStream,
    vis: &'a Visibility,
    client: Ident,
    cast: Ident,
    dispatcher: Ident,
    /// `use <root>::__private as __rpc;`, opening the hidden block.
    rt: Ident,
}

impl<'a> Generator<'a> {
    fn new(endpoint: &'a Endpoint<'a>, name: &'a Ident) -> Generator<'a> {
        Generator {
            endpoint,
            name,
            root: &endpoint.root,
            vis: &endpoint.vis,
            client: names::client(name),
            cast: names::cast(name),
            dispatcher: names::dispatcher(name),
            rt: names::runtime(),
        }
    }

    fn methods(&self) -> impl Iterator<Item = &'a Method<'a>> {
        self.endpoint.methods.iter()
    }

    fn is_trait(&self) -> bool {
        matches!(self.endpoint.kind, Kind::Trait(_))
    }

    /// Items that name generated helpers, inside `const _: () = { ... };`.
    fn hidden_block(&self) -> TokenStream {
        let root = self.root;
        let rt = &self.rt;
        let items = [
            self.args_structs(),
            self.api_consts(),
            self.client_methods(),
            self.cast_methods(),
            self.stub_impl(),
            self.endpoint_impl(),
        ];
        quote! {
            #[allow(non_camel_case_types, non_snake_case, non_upper_case_globals, unreachable_pub, private_interfaces, deprecated, clippy::all)]
            const _: () = {
                use #root::__private as #rt;
                // The probes that tell a `Result` (whatever alias names it)
                // from other types, and find an error's wire class.
                #[allow(unused_imports)]
                use #rt::{DefaultClass as _, NamedClass as _, NoShapes as _, OptionProbe as _, PlainProbe as _, ReturnsResult as _, ReturnsValue as _, TracedShapes as _};
                #(#items)*
            };
        }
    }
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend([
            self.user_item(),
            self.dispatcher_struct(),
            self.client_struct(),
            self.cast_struct(),
            self.hidden_block(),
        ]);
    }
}
