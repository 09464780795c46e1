; Items Quarry chunks in Ruby (captures as in rust.scm). Modules and classes are
; containers; methods read `Module::Class#method`. Methods inside `class << self` belong
; to the class around it.

(module name: (_) @name) @item.module
(class name: (_) @name) @item.class
(method name: (_) @name) @item.function
(singleton_method name: (_) @name) @item.function
