; Items Quarry chunks in Java (captures as in rust.scm). The package declaration names the
; module: `com.acme.Foo.bar`. Nested classes, enums, records and interfaces are containers.

(package_declaration [(scoped_identifier) (identifier)] @package)
(class_declaration name: (identifier) @name) @item.class
(record_declaration name: (identifier) @name) @item.class
(enum_declaration name: (identifier) @name) @item.class
(interface_declaration name: (identifier) @name) @item.interface
(annotation_type_declaration name: (identifier) @name) @item.interface
(method_declaration name: (identifier) @name) @item.function
(constructor_declaration name: (identifier) @name) @item.function
(compact_constructor_declaration name: (identifier) @name) @item.function
