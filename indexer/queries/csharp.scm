; Items Quarry chunks in C# (captures as in rust.scm). Namespaces, classes, structs,
; records and interfaces are containers; a file-scoped namespace names the module.

(file_scoped_namespace_declaration name: (_) @package)
(namespace_declaration name: (_) @name) @item.module
(class_declaration name: (identifier) @name) @item.class
(struct_declaration name: (identifier) @name) @item.class
(record_declaration name: (identifier) @name) @item.class
(interface_declaration name: (identifier) @name) @item.interface
(enum_declaration name: (identifier) @name) @item.enum
(method_declaration name: (identifier) @name) @item.function
(constructor_declaration name: (identifier) @name) @item.function
(local_function_statement name: (identifier) @name) @item.function
