; Items Quarry chunks in Go (captures as in rust.scm). A method is named after its
; receiver's type (@receiver): `pkg.Type.Method`. The package clause names the module.

(package_clause (package_identifier) @package)
(function_declaration name: (identifier) @name) @item.function
(method_declaration receiver: (parameter_list (parameter_declaration type: (_) @receiver)) name: (field_identifier) @name) @item.function
(type_declaration (type_spec name: (type_identifier) @name type: (interface_type))) @item.interface
(type_declaration (type_spec name: (type_identifier) @name type: (struct_type))) @item.struct
