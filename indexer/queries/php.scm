; Items Quarry chunks in PHP (captures as in rust.scm). A `namespace X;` line names the
; module; classes, interfaces, traits and enums are containers.

(namespace_definition name: (namespace_name) @package !body)
(namespace_definition name: (namespace_name) @name body: (compound_statement)) @item.module
(function_definition name: (name) @name) @item.function
(class_declaration name: (name) @name) @item.class
(interface_declaration name: (name) @name) @item.interface
(trait_declaration name: (name) @name) @item.trait
(enum_declaration name: (name) @name) @item.enum
(method_declaration name: (name) @name) @item.function
