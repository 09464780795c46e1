; The code graph of Rust: definitions and references (see src/graph/). Every identifier a
; pattern captures is one site; when several patterns capture the same node, the first
; pattern in this file wins, so specific patterns come before the catch-alls at the end.
;
;   @def.<kind>     a name being defined (function, type, trait, constant, module, macro,
;                   field, variant)
;   @ref.<kind>     a name being used (call, method, macro, path, type, field, name)
;   @qualifier      what a reference is qualified by (`Type` in `Type::new`, `self` in
;                   `self.len()`), in the same pattern as the reference
;   @import.scope   an import item: every reference inside it is an import
;   @import.path + @import.alias   `use a::b as c;`: `c` means `b` in this file
;   @skip           a node that is part of a site another node makes, never one itself
;                   (PHP's `path` inside the variable `$path`)

; --- definitions
(function_item name: (identifier) @def.function)
(function_signature_item name: (identifier) @def.function)
(struct_item name: (type_identifier) @def.type)
(union_item name: (type_identifier) @def.type)
(enum_item name: (type_identifier) @def.type)
(type_item name: (type_identifier) @def.type)
(trait_item name: (type_identifier) @def.trait)
(associated_type name: (type_identifier) @def.type)
(const_item name: (identifier) @def.constant)
(static_item name: (identifier) @def.constant)
(mod_item name: (identifier) @def.module)
(macro_definition name: (identifier) @def.macro)
(field_declaration name: (field_identifier) @def.field)
(enum_variant name: (identifier) @def.variant)

; --- imports
(use_declaration) @import.scope
(extern_crate_declaration) @import.scope
(use_as_clause path: (_) @import.path alias: (identifier) @import.alias)
(extern_crate_declaration name: (identifier) @import.path alias: (identifier) @import.alias)

; --- calls
(call_expression function: (identifier) @ref.call)
(call_expression function: (scoped_identifier path: (_) @qualifier name: (identifier) @ref.call))
(call_expression function: (field_expression value: (_) @qualifier field: (field_identifier) @ref.method))
(call_expression function: (generic_function function: (identifier) @ref.call))
(call_expression function: (generic_function function: (scoped_identifier path: (_) @qualifier name: (identifier) @ref.call)))
(call_expression function: (generic_function function: (field_expression value: (_) @qualifier field: (field_identifier) @ref.method)))
(macro_invocation macro: (identifier) @ref.macro)
(macro_invocation macro: (scoped_identifier path: (_) @qualifier name: (identifier) @ref.macro))
; inside a macro's arguments: `name(...)` and `x.name(...)` are calls too
(token_tree (identifier) @qualifier . "." . (identifier) @ref.method . (token_tree))
(token_tree (identifier) @qualifier . "::" . (identifier) @ref.call . (token_tree))
(token_tree (identifier) @ref.call . (token_tree))

; --- paths, types, fields
(scoped_identifier path: (_) @qualifier name: (identifier) @ref.path)
(scoped_type_identifier path: (_) @qualifier name: (type_identifier) @ref.type)
(scoped_use_list path: (_) @qualifier list: (use_list (identifier) @ref.path))
(field_expression value: (_) @qualifier field: (field_identifier) @ref.field)
(type_identifier) @ref.type
(field_identifier) @ref.field
(shorthand_field_identifier) @ref.field
(identifier) @ref.name
