"""Editor signatures (editors.yaml): one case per signature, firmware stays unflagged, real files, shared corpus."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tamperscope.probe.harvest import harvest
from tamperscope.probe.rules import MetaInput
from tamperscope.probe.rules.signatures import flagged, load_signatures, match_signatures, parse_signatures
from tamperscope.probe.rules.software import editing_software
from tamperscope.settings import LimitSettings

SIGNATURES = load_signatures()

# (ExifTool -G1 tag, value, signature expected). Every signature of editors.yaml needs at least one case here
# (test_every_signature_has_a_case), so a new entry cannot be added without a test.
CASES: list[tuple[str, Any, str]] = [
    ("IFD0:Software", "Adobe Lightroom Classic 13.1 (Windows)", "Adobe Lightroom"),
    ("IFD0:Software", "Adobe Photoshop Lightroom 3.6 (Windows)", "Adobe Lightroom"),
    ("XMP-xmp:CreatorTool", "Adobe Photoshop Camera Raw 16.0 (Windows)", "Adobe Camera Raw"),
    ("XMP-crs:ProcessVersion", "11.0", "Adobe Camera Raw"),
    ("IFD0:Software", "Adobe DNG Converter 16.0 (Windows)", "Adobe DNG Converter"),
    ("IFD0:Software", "Adobe Photoshop CS6 (Windows)", "Adobe Photoshop"),
    ("XMP-xmp:CreatorTool", "Adobe Photoshop Elements 5.0 Windows", "Adobe Photoshop"),
    ("XMP-xmpMM:HistorySoftwareAgent", ["Adobe Photoshop 25.0 (Windows)", "Adobe Photoshop 25.0 (Windows)"],
     "Adobe Photoshop"),
    ("Photoshop:WriterName", "Adobe Photoshop", "Adobe Photoshop"),
    ("Photoshop:PhotoshopQuality", 10, "Adobe Photoshop (IRB save resources)"),
    ("Photoshop:GlobalAngle", 30, "Adobe Photoshop (IRB save resources)"),
    ("XMP-xmp:CreatorTool", "Adobe Illustrator 27.0 (Macintosh)", "Adobe Illustrator / InDesign / ImageReady"),
    ("XMP-xmpMM:HistorySoftwareAgent", "Adobe Premiere Pro 2023.0 (Windows)", "Adobe Premiere / After Effects"),
    ("IFD0:Software", "GIMP 2.10.34", "GIMP"),
    ("File:Comment", "Created with GIMP", "GIMP"),
    ("IFD0:Software", "Affinity Photo 2 2.3.0", "Affinity Photo"),
    ("PNG:Software", "paint.net 4.3.12", "Paint.NET"),
    ("IFD0:Software", "Corel PaintShop Pro 23.0", "Corel / Jasc Paint Shop Pro"),
    ("IFD0:Software", "Corel PHOTO-PAINT X8", "Corel PHOTO-PAINT / CorelDRAW"),
    ("IFD0:ProcessingSoftware", "ACD Systems Digital Imaging", "ACD Systems (ACDSee)"),
    ("IFD0:Software", "ACDSee Pro 9", "ACD Systems (ACDSee)"),
    ("XMP-xmp:CreatorTool", "GraphicConverter 12", "GraphicConverter"),
    ("IFD0:Software", "Pixelmator Pro 3.5", "Pixelmator"),
    ("PNG:Software", "Krita 5.2.2", "Krita"),
    ("IFD0:Software", "Photopea", "Photopea"),
    ("IFD0:Software", "PaintTool SAI", "PaintTool SAI"),
    ("IFD0:Software", "Picasa", "Picasa"),
    ("IFD0:Software", "Windows Photo Editor 10.0.10011.16384", "Windows Photo Editor / Photos"),
    ("XMP-xmp:CreatorTool", "Aperture 3.6", "Apple Aperture"),
    ("IFD0:Software", "Luminar Neo", "Skylum Luminar"),
    ("IFD0:Software", "ON1 Photo RAW 2023", "ON1 Photo RAW"),
    ("IFD0:Software", "PhotoScape", "PhotoScape / Fotor / Pixlr / BeFunky"),
    ("IFD0:Software", "Facetune2", "Mobile editing apps"),
    ("IFD0:Software", "Snapseed 2.0", "Mobile editing apps"),
    ("XMP-xmp:CreatorTool", "Final Cut Pro 10.6", "Video editors"),
    ("IFD0:Software", "Nikon Capture Editor 4.1.3 W", "Nikon Capture (Capture Editor, Capture NX, NX-D, NX Studio)"),
    ("IFD0:Software", "Capture NX 2.4.7 W", "Nikon Capture (Capture Editor, Capture NX, NX-D, NX Studio)"),
    ("IFD0:Software", "NX Studio 1.7.0 W", "Nikon Capture (Capture Editor, Capture NX, NX-D, NX Studio)"),
    ("Nikon:NikonCaptureVersion", "Capture NX 2.4.7 W", "Nikon Capture (Capture Editor, Capture NX, NX-D, NX Studio)"),
    ("IFD0:Software", "Capture One 23 Windows", "Capture One"),
    ("IFD0:Software", "darktable 4.6.0", "darktable"),
    ("IFD0:Software", "RawTherapee 5.9", "RawTherapee"),
    ("IFD0:Software", "DxO PhotoLab 7", "DxO (PhotoLab, OpticsPro, PureRAW)"),
    ("IFD0:Software", "Digital Photo Professional", "Canon Digital Photo Professional"),
    ("IFD0:Software", "Sony Imaging Edge Desktop 4.2", "Sony Imaging Edge / Image Data Converter"),
    ("IFD0:Software", "Olympus Workspace 2.1", "Olympus / OM Workspace, Olympus Viewer"),
    ("IFD0:Software", "SILKYPIX Developer Studio 11", "SILKYPIX"),
    ("IFD0:Software", "PENTAX Digital Camera Utility 5", "Pentax Digital Camera Utility / PHOTO Laboratory"),
    ("IFD0:Software", "RAW FILE CONVERTER EX 3.0", "Fujifilm RAW FILE CONVERTER / X RAW STUDIO"),
    ("IFD0:Software", "Sigma Photo Pro 6.8", "Sigma Photo Pro / Hasselblad Phocus"),
    ("IFD0:Software", "XnView MP 1.5", "IrfanView / XnView / FastStone"),
    ("PNG:Software", "ImageMagick 7.1.1", "ImageMagick / GraphicsMagick"),
    ("File:Comment", "CREATOR: gd-jpeg v1.0 (using IJG JPEG v62), quality = 90", "GD library (web resize)"),
    ("IFD0:Software", "Nikon Transfer 1.1 W", "Nikon Transfer / ViewNX"),
    ("IFD0:Software", "ViewNX-i 1.4.3 W", "Nikon Transfer / ViewNX"),
    ("IFD0:Software", "OLYMPUS CAMEDIA Master", "Olympus CAMEDIA Master / OLYMPUS Master"),
    ("IFD0:Software", "ZoomBrowser EX", "Canon ZoomBrowser / ImageBrowser / EOS Utility / CameraWindow"),
    ("IFD0:Software", "FinePixViewer Ver.5.3", "Fujifilm FinePixViewer / MyFinePix"),
    ("IFD0:Software", "PHOTOfunSTUDIO 10.0",
     "Panasonic PHOTOfunSTUDIO / Sony PlayMemories / Kodak EasyShare"),
    ("IFD0:Software", "Microsoft Windows Photo Viewer 6.1.7600.16385", "Windows Photo Viewer / Photo Gallery"),
    ("IFD0:Software", "iPhoto 9.6", "Apple iPhoto / Image Capture"),
    ("XMP-xmp:CreatorTool", "Adobe Bridge 2024", "Adobe Bridge / Photo Downloader"),
    ("IFD0:ProcessingSoftware", "digiKam-8.2.0", "digiKam / Shotwell"),
    ("XMP-x:XMPToolkit", "Image::ExifTool 12.76", "ExifTool"),
    ("IPTC:OriginatingProgram", "Photo Mechanic", "Photo Mechanic"),
    # not flagged: labels only
    ("IFD0:Software", "17.1", "Phone OS / camera app version"),
    ("IFD0:Software", "HDR+ 1.0.570503588zd", "Phone OS / camera app version"),
    ("IFD0:Software", "G998BXXU5CVDB", "Phone OS / camera app version"),
    ("IFD0:Software", "Ver.1.00", "Camera firmware version"),
    ("IFD0:Software", "COOLPIX P6000V1.0", "Camera firmware version"),
    ("IFD0:Software", "Firmware Version 1.0.4", "Camera firmware version"),
    ("XMP-xmp:CreatorTool", "Digital Camera FinePix E900    Ver1.00", "Camera firmware version"),
    ("XMP-x:XMPToolkit", "Adobe XMP Core 5.1.0-jc003", "XMP library (Adobe XMP Core, XMP toolkit, Exiv2, Exempi)"),
]


def _signature(name: str) -> Any:
    return next(s for s in SIGNATURES.signatures if s.name == name)


def test_every_signature_has_a_case() -> None:
    assert {s.name for s in SIGNATURES.signatures} == {name for _, _, name in CASES}


@pytest.mark.parametrize(("tag", "value", "name"), CASES, ids=[f"{n}:{v}" for _, v, n in CASES])
def test_each_signature_is_attributed_and_flagged_by_its_category(tag: str, value: Any, name: str) -> None:
    matches = match_signatures({"IFD0:Make": "Canon", tag: value}, SIGNATURES)
    assert [m.signature for m in matches] == [name]
    assert matches[0].tag == tag and matches[0].value in (value if isinstance(value, list) else [str(value)])
    category = SIGNATURES.categories[_signature(name).category]
    records = editing_software(MetaInput(exif={"IFD0:Make": "Canon", tag: value}))
    if not category.flagged:
        assert records == []
        return
    assert len(records) == 1 and records[0].module_name == "meta.editing_software"
    assert records[0].score == pytest.approx(category.score)
    evidence = records[0].evidence
    assert evidence["tags"] == {tag: value} and evidence["software"] == [name]
    assert evidence["category"] == category.name


@pytest.mark.parametrize("exif", [
    {"IFD0:Make": "Google", "IFD0:Software": "HDR+ 1.0.570503588zd", "XMP-x:XMPToolkit": "Adobe XMP Core 5.1.0-jc003"},
    {"IFD0:Make": "Apple", "IFD0:Software": "17.1", "Keys:Software": "17.1"},
    {"IFD0:Make": "NIKON", "IFD0:Software": "COOLPIX P6000V1.0", "Nikon:NikonCaptureVersion": "COOLPIX P6000V1.0"},
    {"IFD0:Make": "Canon", "IFD0:Software": "Firmware Version 1.0.4", "XMP-x:XMPToolkit": "XMP Core 4.4.0-Exiv2"},
    # IRB resources that IPTC tools and Lightroom write as well (exiftool_PhotoMechanic.jpg carries exactly these)
    {"IFD0:Make": "Canon", "Photoshop:XResolution": 72, "Photoshop:CopyrightFlag": 0, "Photoshop:IPTCDigest": "0"},
    # our own tool version is not the file's writer
    {"ExifTool:ExifToolVersion": 12.57, "File:FileType": "JPEG"},
])
def test_camera_firmware_phone_apps_and_libraries_are_not_flagged(exif: dict[str, Any]) -> None:
    assert editing_software(MetaInput(exif=exif)) == []


def test_the_strongest_category_sets_the_score_and_every_match_is_evidence() -> None:
    exif = {"IFD0:Software": "Nikon Transfer 1.1 W", "XMP-xmp:CreatorTool": "Adobe Photoshop CS2 Windows",
            "XMP-x:XMPToolkit": "Adobe XMP Core 4.2"}
    [record] = editing_software(MetaInput(exif=exif))
    assert record.score == pytest.approx(SIGNATURES.categories["editor"].score)
    assert record.evidence["category"] == "editor"
    assert record.evidence["software"] == ["Adobe Photoshop", "Nikon Transfer / ViewNX"]
    assert {m["tag"]: m["category"] for m in record.evidence["matches"]} == {
        "IFD0:Software": "transfer-tool", "XMP-xmp:CreatorTool": "editor", "XMP-x:XMPToolkit": "xmp-library"}
    [transfer] = editing_software(MetaInput(exif={"IFD0:Software": "Nikon Transfer 1.1 W"}))
    assert transfer.score is not None and record.score is not None and transfer.score < record.score


def test_categories_order_editor_above_processing_tools() -> None:
    score = {name: c.score for name, c in SIGNATURES.categories.items()}
    assert score["editor"] > score["raw-converter"] > score["converter"] > score["transfer-tool"] \
        > score["metadata-tool"] > 0
    assert not any(c.flagged for c in SIGNATURES.categories.values() if c.score == 0)


def test_a_signature_with_an_unknown_category_is_rejected() -> None:
    data = {"version": 1, "categories": {"editor": {"score": 0.6, "flagged": True, "meaning": "m"}},
            "software_tags": ["Software"],
            "signatures": [{"name": "X", "category": "editr", "match": [{"pattern": "x"}], "source": "s"}]}
    with pytest.raises(ValueError, match="unknown category"):
        parse_signatures(data)


# Real files: a PIL JPEG, tags written by exiftool, read back by the stage's own harvest.
REAL_FILES: list[tuple[list[str], str | None]] = [
    (["-Make=NIKON", "-Model=COOLPIX P6000", "-Software=Nikon Transfer 1.1 W"], "Nikon Transfer / ViewNX"),
    (["-IFD0:ProcessingSoftware=ACD Systems Digital Imaging"], "ACD Systems (ACDSee)"),
    (["-XMP-xmp:CreatorTool=GraphicConverter 12"], "GraphicConverter"),
    (["-XMP-xmpMM:HistoryAction=saved", "-XMP-xmpMM:HistorySoftwareAgent=Capture One 23 Windows"], "Capture One"),
    (["-Photoshop:GlobalAngle=30"], "Adobe Photoshop (IRB save resources)"),
    (["-Comment=Created with GIMP"], "GIMP"),
    (["-Make=NIKON", "-Software=COOLPIX P6000V1.0", "-XMP-x:XMPToolkit=Adobe XMP Core 5.1.0-jc003"], None),
]


@pytest.mark.parametrize(("args", "name"), REAL_FILES, ids=[" ".join(a) for a, _ in REAL_FILES])
def test_tags_written_by_exiftool_onto_a_real_jpeg(tmp_path: Path, args: list[str], name: str | None) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path, "JPEG", quality=90)
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args, str(path)], check=True)
    exif = harvest(path, LimitSettings()).exiftool
    records = editing_software(MetaInput(exif=exif))
    if name is None:
        assert records == []
        return
    assert exif is not None
    # writing XMP makes ExifTool name itself in XMPToolkit: that is a true (metadata-tool) match
    writer = {"ExifTool"} if str(exif.get("XMP-x:XMPToolkit", "")).startswith("Image::ExifTool") else set()
    assert [set(r.evidence["software"]) for r in records] == [{name} | writer]
    assert all(exif[tag] == value for tag, value in records[0].evidence["tags"].items())


# What the shared exif/ files carry (checked with `exiftool -j -G1 FILE`). LABEL_SOFTWARE maps the Software
# value of a MANIFEST.tsv label to the signature it must be attributed to (None: firmware, not flagged);
# BEYOND_LABEL lists the files flagged by tags the label does not mention, and why.
LABEL_SOFTWARE: dict[str, str | None] = {
    "GIMP 2.4.5": "GIMP",
    "Adobe Photoshop 7.0": "Adobe Photoshop",
    "Adobe Photoshop Lightroom": "Adobe Lightroom",
    "Nikon Transfer 1.1 W": "Nikon Transfer / ViewNX",
    "OLYMPUS CAMEDIA Master": "Olympus CAMEDIA Master / OLYMPUS Master",
    "10.0.2": None, "4.1": None, "E775v1.3u": None, "v981-79": None, "HDR+ 1.0.570503588zd": None,
    "Common_fileformat": None,
}
BEYOND_LABEL: dict[str, set[str]] = {
    # saved by Photoshop 6.0: IRB WriterName/ReaderName, JPEG quality resource, slices
    "ianare_jpg_exif-org_nikon-e950.jpg": {"Adobe Photoshop", "Adobe Photoshop (IRB save resources)"},
    "exiftool_IPTC.jpg": {"Adobe Photoshop", "Adobe Photoshop (IRB save resources)"},
    "exiftool_Photoshop.psd": {"Adobe Photoshop", "Adobe Photoshop (IRB save resources)"},
    "exiftool_ExifTool.jpg": {"Adobe Photoshop (IRB save resources)", "ExifTool"},
    "exiftool_XMP.jpg": {"ExifTool"},
    # XMPToolkit "Image::ExifTool n": metadata written with ExifTool
    "exiftool_PNG.png": {"ExifTool"}, "exiftool_RIFF.webp": {"ExifTool"},
    "ianare_heic_samplefilehub.heif": {"ExifTool"},
    # XMP CreatorTool Photoshop besides Software=GIMP; the D70 file also carries Camera Raw settings
    "ianare_jpg_Nikon_D70.jpg": {"Adobe Photoshop", "Adobe Camera Raw"},
    "ianare_jpg_Pentax_K10D.jpg": {"Adobe Photoshop"},
    "ianare_jpg_long_description.jpg": {"Adobe Photoshop"},
    # Lightroom file with a Photoshop CS4 history and Camera Raw settings
    "mde_Canon_EOS_7D.jpg": {"Adobe Photoshop", "Adobe Camera Raw"},
}


@pytest.mark.shared
def test_shared_exif_files_get_the_flags_their_tags_support(shared_dir: Path) -> None:
    folder = shared_dir / "exif"
    labels: dict[str, str] = {}
    with open(shared_dir / "MANIFEST.tsv", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if row and row[0].startswith("exif/"):
                labels[row[0].removeprefix("exif/")] = row[-1]
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-u", "-n", *sorted(str(p) for p in folder.iterdir()
                                                                        if p.name in labels)],
                         capture_output=True, text=True, check=False).stdout
    records = {Path(r["SourceFile"]).name: r for r in json.loads(out)}
    assert set(records) == set(labels)
    for name, label in labels.items():
        exif = records[name]
        software = dict(part.split("=", 1) for part in label.split("; ", 1)[-1].split(", ") if "=" in part)
        expected: set[str] = set(BEYOND_LABEL.get(name, set()))
        if "Software" in software:
            assert software["Software"] in LABEL_SOFTWARE, f"{name}: add {software['Software']!r} to LABEL_SOFTWARE"
            wanted = LABEL_SOFTWARE[software["Software"]]
            on_software = [m for m in match_signatures(exif, SIGNATURES) if m.tag == "IFD0:Software"]
            if wanted is not None:
                expected.add(wanted)
                assert [m.signature for m in on_software] == [wanted], name
            else:
                assert not flagged(on_software, SIGNATURES), name
        got = {m.signature for m in flagged(match_signatures(exif, SIGNATURES), SIGNATURES)}
        assert got == expected, name
        assert bool(editing_software(MetaInput(exif=exif))) == bool(expected), name
