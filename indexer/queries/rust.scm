; Items Quarry chunks in Rust. Each pattern captures the item as @item.<kind> and its name
; as @name. Containers (impl, trait, module) become outlines; their items become chunks too.

(function_item name: (identifier) @name) @item.function
(struct_item name: (type_identifier) @name) @item.struct
(union_item name: (type_identifier) @name) @item.struct
(enum_item name: (type_identifier) @name) @item.enum
(macro_definition name: (identifier) @name) @item.macro
(trait_item name: (type_identifier) @name) @item.trait
(impl_item type: (_) @name) @item.impl
(mod_item name: (identifier) @name body: (declaration_list)) @item.module
