"""napari plugin: reader, labels writer, sample data, curation tool and analysis widgets.

Everything here is a thin layer over the library (nothing in the core imports it); it needs the
``[napari]`` extra. The npe2 manifest is ``napari.yaml`` beside this file.
"""
